// The runs page: every trial, live, sortable by any column.
"use strict";

const runsState = { runs: [], sortKey: "age", sortDir: "asc" };

function sortValue(run, key) {
  switch (key) {
    case "workers": return run.workers.length;
    case "age": return run.last_ts == null ? Infinity : -run.last_ts;
    case "error": case "warning": case "info": return run.alerts[key];
    case "objective": return run.objective ? run.objective.final : null;
    default: return run[key];
  }
}

function renderRuns() {
  const { sortKey, sortDir } = runsState;
  const sign = sortDir === "asc" ? 1 : -1;
  const rows = [...runsState.runs].sort((a, b) => {
    const x = sortValue(a, sortKey), y = sortValue(b, sortKey);
    if (x == null && y == null) return a.trial.localeCompare(b.trial);
    if (x == null) return 1;
    if (y == null) return -1;
    return (x < y ? -1 : x > y ? 1 : a.trial.localeCompare(b.trial)) * sign;
  });
  // Rows are kept and updated in place (keyed by trial): a row being clicked is never replaced.
  const body = document.querySelector("#runs tbody");
  const existing = new Map([...body.rows].map((row) => [row.dataset.trial, row]));
  const wanted = rows.map((run) => {
    const fresh = runRow(run);
    const row = existing.get(run.trial);
    if (!row) return fresh;
    row.dataset.status = run.status;
    [...fresh.cells].forEach((cell, i) => {
      const old = row.cells[i];
      if (old.outerHTML !== cell.outerHTML) old.replaceWith(cell);
    });
    return row;
  });
  for (const row of existing.values()) if (!wanted.includes(row)) row.remove();
  wanted.forEach((row, i) => { if (body.rows[i] !== row) body.insertBefore(row, body.rows[i] || null); });
  document.getElementById("no-runs").hidden = rows.length > 0;
  for (const th of document.querySelectorAll("th.sortable")) {
    th.dataset.dir = th.dataset.key === sortKey ? sortDir : "";
  }
}

function runRow(run) {
  const link = ts.el("a", { href: `/trial?trial=${encodeURIComponent(run.trial)}`, text: run.trial });
  const ended = run.workers_ended.length;
  const objective = run.objective
    ? `${run.objective.metric} ${ts.num(run.objective.final)} (${ts.num(run.objective.best)})` : "–";
  const cells = [
    ts.el("td", {}, link),
    ts.el("td", {}, ts.el("span", { class: `badge status-${run.status}`, text: run.status })),
    ts.el("td", { class: "num", text: ended ? `${run.workers.length} (${ended} ended)` : String(run.workers.length),
                  title: run.workers.join(", ") }),
    ts.el("td", { text: run.modes.join(" ") || "–" }),
    ts.el("td", { class: "num", text: run.last_step == null ? "–" : String(run.last_step) }),
    ts.el("td", { class: "num age", "data-ts": run.last_ts ?? "", text: ts.age(run.last_ts == null ? null : ts.now() - run.last_ts) }),
    ts.el("td", { class: "num sev-error", text: String(run.alerts.error) }),
    ts.el("td", { class: "num sev-warning", text: String(run.alerts.warning) }),
    ts.el("td", { class: "num sev-info", text: String(run.alerts.info) }),
    ts.el("td", { class: "num", text: objective }),
  ];
  return ts.el("tr", { class: "run", "data-trial": run.trial, "data-status": run.status }, ...cells);
}

function showRuns(payload) {
  ts.setNow(payload.now);
  runsState.runs = payload.runs;
  document.getElementById("evicted").textContent =
    payload.evicted ? `${payload.evicted} older trials were let go to bound memory.` : "";
  renderRuns();
}

async function loadRuns() {
  const response = await fetch("/api/runs");
  const payload = await response.json();
  document.getElementById("source").textContent = payload.source;
  showRuns(payload);
}

for (const th of document.querySelectorAll("th.sortable")) {
  th.addEventListener("click", () => {
    const key = th.dataset.key;
    runsState.sortDir = runsState.sortKey === key && runsState.sortDir === "asc" ? "desc" : "asc";
    runsState.sortKey = key;
    renderRuns();
  });
}
setInterval(() => {
  for (const cell of document.querySelectorAll("td.age")) {
    if (cell.dataset.ts) cell.textContent = ts.age(ts.now() - Number(cell.dataset.ts));
  }
}, 1000);
loadRuns();
ts.live("/api/events", { runs: showRuns }, loadRuns);
