// Shared by both pages: formatting, the live connection, small DOM helpers.
"use strict";

const ts = {
  el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child);
    return node;
  },
  age(seconds) {
    if (seconds == null) return "–";
    if (seconds < 1) return "now";
    if (seconds < 90) return `${Math.round(seconds)} s ago`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
    if (seconds < 172800) return `${Math.round(seconds / 3600)} h ago`;
    return `${Math.round(seconds / 86400)} d ago`;
  },
  num(value) {
    if (value == null) return "–";
    const abs = Math.abs(value);
    return abs !== 0 && (abs < 1e-3 || abs >= 1e5) ? value.toExponential(3) : String(+value.toPrecision(5));
  },
  // Server-sent events with a snapshot reload after every (re)connection and on "reset".
  live(url, handlers, reload) {
    const dot = document.getElementById("live");
    const source = new EventSource(url);
    source.addEventListener("hello", () => { if (dot) dot.classList.add("on"); reload(); });
    source.onerror = () => { if (dot) dot.classList.remove("on"); };
    for (const [event, handle] of Object.entries(handlers)) {
      source.addEventListener(event, (message) => {
        const payload = JSON.parse(message.data);
        if (payload.reset) reload(); else handle(payload);
      });
    }
    return source;
  },
  // Server time minus this browser's, so ages do not depend on the browser's clock.
  clockOffset: 0,
  setNow(serverNow) { ts.clockOffset = serverNow - Date.now() / 1000; },
  now() { return Date.now() / 1000 + ts.clockOffset; },
};
