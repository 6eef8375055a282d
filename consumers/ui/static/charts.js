// One chart of curves by step (uPlot), with alert markers and rule thresholds drawn over it.
"use strict";

const WORKER_COLORS = ["#1570ef", "#12b76a", "#7a5af8", "#f79009", "#ee46bc", "#0ba5ec", "#667085", "#a15c07"];
const MODE_DASH = { TRAIN: [], EVAL: [7, 4], PREDICT: [2, 3], GLOBAL: [10, 3, 2, 3] };
const CHART_HEIGHT = 230;

// Curves on the union of their steps: uPlot wants one x array; a curve without a point at a step has null.
function alignLines(lines, log) {
  const steps = [...new Set(lines.flatMap((line) => line.steps))].sort((a, b) => a - b);
  const ys = lines.map((line) => {
    const out = new Array(steps.length).fill(null);
    let j = 0;
    for (let i = 0; i < line.steps.length; i++) {
      while (steps[j] < line.steps[i]) j++;
      const v = line.values[i];
      out[j] = log && v != null && v <= 0 ? null : v;
    }
    return out;
  });
  return [steps, ...ys];
}

// The value of a curve at the newest point at or before `step` (null before its first point).
function valueAt(line, step) {
  let lo = 0, hi = line.steps.length - 1, found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (line.steps[mid] <= step) { found = mid; lo = mid + 1; } else hi = mid - 1;
  }
  return found < 0 ? null : line.values[found];
}

function alertText(alert) {
  const lines = [`${alert.rule}${alert.rule !== alert.rule_type ? ` (${alert.rule_type})` : ""} · ${alert.severity}`,
                 `step ${alert.step} · worker ${alert.worker} · ${alert.mode}`, alert.message];
  const limits = Object.entries(alert.details || {}).filter(([key]) => /threshold|range/.test(key));
  const shown = (v) => (typeof v === "number" ? ts.num(v) : Array.isArray(v) ? `[${v.map(shown).join(", ")}]` : JSON.stringify(v));
  if (limits.length) lines.push(limits.map(([k, v]) => `${k} = ${shown(v)}`).join(", "));
  return lines.join("\n");
}

const tooltip = {
  show(text, event) {
    const tip = document.getElementById("tooltip");
    tip.textContent = text;
    tip.hidden = false;
    tip.style.left = `${Math.min(event.clientX + 14, window.innerWidth - 470)}px`;
    tip.style.top = `${event.clientY + 14}px`;
  },
  hide() { document.getElementById("tooltip").hidden = true; },
};

class StepChart {
  constructor(parent, name, title, withThresholds) {
    this.name = name;
    this.withThresholds = withThresholds;
    this.root = ts.el("div", { class: "chart", "data-name": name });
    this.root.append(ts.el("h3", { text: title }));
    this.holder = ts.el("div");
    this.root.append(this.holder);
    parent.append(this.root);
    this.plot = null;
    this.signature = "";
    this.lines = [];
    this.alerts = [];
    this.markers = new Map(); // alert id -> element
  }

  // lines: [{key, label, worker, mode, color, steps, values}]; alerts: those naming this chart's tensor.
  update(lines, alerts, { log, hiddenModes }) {
    this.lines = lines;
    this.alerts = alerts;
    const useLog = log && lines.some((line) => line.values.some((v) => v != null && v > 0));
    const data = alignLines(lines, useLog);
    const signature = lines.map((line) => line.key).join("|") + (useLog ? "|log" : "");
    if (this.plot === null || signature !== this.signature) {
      this.signature = signature;
      this.build(data, useLog);
    } else {
      this.plot.setData(data);
    }
    lines.forEach((line, i) => {
      const show = !hiddenModes.has(line.mode);
      if (this.plot.series[i + 1].show !== show) this.plot.setSeries(i + 1, { show });
    });
    this.placeMarkers(this.plot);
  }

  build(data, log) {
    if (this.plot) this.plot.destroy();
    this.markers.clear();
    const width = Math.max(320, this.root.clientWidth || 520);
    const series = [{ label: "step" }, ...this.lines.map((line) => ({
      label: line.label, stroke: line.color, dash: MODE_DASH[line.mode] || [], width: 1.5, spanGaps: true,
    }))];
    this.plot = new uPlot({
      width, height: CHART_HEIGHT,
      scales: { x: { time: false }, y: log ? { distr: 3 } : {} },
      axes: [{ label: "step", size: 34 }, { size: 64 }],
      series,
      cursor: { drag: { x: true, y: false } },
      hooks: { draw: [(u) => { this.drawThresholds(u); this.placeMarkers(u); }] },
    }, data, this.holder);
  }

  resize() {
    if (this.plot) this.plot.setSize({ width: Math.max(320, this.root.clientWidth), height: CHART_HEIGHT });
  }

  // The curve an alert belongs to: same worker, same mode (an alert of mode GLOBAL: any mode).
  lineOf(alert) {
    return this.lines.find((l) => l.worker === alert.worker && l.mode === alert.mode)
        || this.lines.find((l) => l.worker === alert.worker && alert.mode === "GLOBAL")
        || this.lines.find((l) => l.worker === alert.worker);
  }

  placeMarkers(u) {
    const width = u.over.clientWidth, height = u.over.clientHeight;
    const keep = new Set();
    for (const alert of this.alerts) {
      keep.add(alert.id);
      let marker = this.markers.get(alert.id);
      if (!marker) {
        marker = ts.el("div", { class: `alert-marker sev-${alert.severity}`, "data-rule": alert.rule,
                                "data-step": String(alert.step), "data-worker": alert.worker,
                                "aria-label": alertText(alert) });
        const text = alertText(alert);
        marker.addEventListener("mouseenter", (event) => tooltip.show(text, event));
        marker.addEventListener("mouseleave", () => tooltip.hide());
        u.over.append(marker);
        this.markers.set(alert.id, marker);
      }
      const x = u.valToPos(alert.step, "x");
      const line = this.lineOf(alert);
      const value = line ? valueAt(line, alert.step) : null;
      let y = value == null ? 8 : u.valToPos(value, "y");
      if (!Number.isFinite(y)) y = 8;
      marker.style.left = `${x}px`;
      marker.style.top = `${Math.min(Math.max(y, 6), height - 6)}px`;
      marker.hidden = !(x >= 0 && x <= width);
    }
    for (const [id, marker] of this.markers) {
      if (!keep.has(id)) { marker.remove(); this.markers.delete(id); }
    }
  }

  // Where an alert's details carry a threshold in the curve's own units (and name this curve),
  // a dashed segment at that level over the steps the rule compared.
  drawThresholds(u) {
    if (!this.withThresholds) return;
    const ctx = u.ctx;
    ctx.save();
    ctx.setLineDash([5, 4]);
    ctx.lineWidth = 1.5 * devicePixelRatio;
    for (const alert of this.alerts) {
      const details = alert.details || {};
      if (typeof details.threshold !== "number" || (details.tensor && details.tensor !== this.name)) continue;
      const y = u.valToPos(details.threshold, "y", true);
      const x1 = u.valToPos(alert.step, "x", true);
      const start = typeof details.reference_step === "number" ? details.reference_step : alert.step;
      const x0 = Math.min(u.valToPos(start, "x", true), x1 - 16 * devicePixelRatio);
      if (!Number.isFinite(y) || y < u.bbox.top || y > u.bbox.top + u.bbox.height) continue;
      ctx.strokeStyle = alert.severity === "error" ? "#d92d20" : alert.severity === "info" ? "#1570ef" : "#dc6803";
      ctx.beginPath();
      ctx.moveTo(Math.max(x0, u.bbox.left), y);
      ctx.lineTo(Math.min(x1, u.bbox.left + u.bbox.width), y);
      ctx.stroke();
    }
    ctx.restore();
  }

  destroy() {
    if (this.plot) this.plot.destroy();
    this.root.remove();
  }
}
