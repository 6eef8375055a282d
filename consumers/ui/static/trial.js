// A trial's page: its curves with alert markers, weight and gradient statistics, its alerts; live.
"use strict";

const TRIAL = new URLSearchParams(location.search).get("trial");
const MAX_CLIENT_POINTS = 2500; // per curve; past it, reload the server's decimated snapshot
const MAX_ALERT_ROWS = 500;
const STAT_ORDER = ["norm", "mean_abs", "variance", "zeros", "nonfinite"];
const trial = {
  series: new Map(), alerts: [], alertIds: new Set(), summary: null, statLabels: {},
  hiddenModes: new Set(), curveCharts: new Map(), layerCharts: new Map(), pending: false,
};

function resetFrom(payload) {
  trial.series = new Map(payload.series.map((s) => [s.id, s]));
  trial.alerts = payload.alerts;
  trial.alertIds = new Set(payload.alerts.map((a) => a.id));
  trial.summary = payload.summary;
  trial.statLabels = payload.stat_labels;
  ts.setNow(payload.now);
  schedule();
}

async function loadTrial() {
  const response = await fetch(`/api/trial?trial=${encodeURIComponent(TRIAL)}`);
  if (!response.ok) {
    document.getElementById("gone").hidden = false;
    document.getElementById("gone").textContent = await response.text();
    return;
  }
  resetFrom(await response.json());
}

function applyLive(payload) {
  if (payload.gone) { document.getElementById("gone").hidden = false; return; }
  ts.setNow(payload.now);
  trial.summary = payload.summary;
  let tooLong = false;
  for (const meta of payload.series || []) {
    if (!trial.series.has(meta.id)) trial.series.set(meta.id, { ...meta, steps: [], values: [] });
  }
  for (const [id, step, value] of payload.points || []) {
    const series = trial.series.get(id);
    if (!series) { tooLong = true; continue; } // not known here: the snapshot has it
    if (series.steps.length && step <= series.steps[series.steps.length - 1]) continue;
    series.steps.push(step);
    series.values.push(value);
    if (series.steps.length > MAX_CLIENT_POINTS) tooLong = true;
  }
  for (const alert of payload.alerts || []) {
    if (!trial.alertIds.has(alert.id)) { trial.alertIds.add(alert.id); trial.alerts.push(alert); }
  }
  if (trial.alerts.length > MAX_ALERT_ROWS) {
    for (const old of trial.alerts.splice(0, trial.alerts.length - MAX_ALERT_ROWS)) trial.alertIds.delete(old.id);
  }
  if (tooLong) loadTrial(); else schedule();
}

function schedule() {
  if (trial.pending) return;
  trial.pending = true;
  requestAnimationFrame(() => { trial.pending = false; render(); });
}

function render() {
  renderHeader();
  renderModes();
  const workers = [...new Set([...trial.series.values()].map((s) => s.worker))].sort();
  const lineOf = (s) => ({
    key: `${s.worker}|${s.mode}`, label: `worker ${s.worker} · ${s.mode}`, worker: s.worker, mode: s.mode,
    color: WORKER_COLORS[workers.indexOf(s.worker) % WORKER_COLORS.length], steps: s.steps, values: s.values,
  });
  const options = { log: document.getElementById("log-scale").checked, hiddenModes: trial.hiddenModes };
  // Scalars and metrics: one chart per name.
  const curves = groupBy([...trial.series.values()].filter((s) => s.kind === "scalar" || s.kind === "metric"),
                         (s) => `${s.kind}:${s.name}`);
  syncCharts(trial.curveCharts, curves, document.getElementById("curves"), (key, list) => {
    const { kind, name } = list[0];
    return new StepChart(document.getElementById("curves"), name, kind === "metric" ? `${name} (metric)` : name, true);
  }, (chart, list) => chart.update(list.map(lineOf), alertsNaming(list[0].name), options));
  document.getElementById("no-curves").hidden = curves.size > 0;
  // Weights and gradients: one chart per tensor, the chosen statistic.
  const stat = chosenStat();
  const layers = groupBy([...trial.series.values()].filter((s) => s.kind === stat), (s) => s.name);
  syncCharts(trial.layerCharts, layers, document.getElementById("layers"), (key, list) =>
    new StepChart(document.getElementById("layers"), list[0].name, list[0].name, false),
    (chart, list) => chart.update(list.map(lineOf), alertsNaming(list[0].name), options));
  document.getElementById("no-layers").hidden = layers.size > 0;
  renderAlerts();
}

function groupBy(items, keyOf) {
  const groups = new Map();
  for (const item of items) {
    const key = keyOf(item);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(item);
  }
  for (const list of groups.values()) list.sort((a, b) => (a.worker + a.mode).localeCompare(b.worker + b.mode));
  return new Map([...groups.entries()].sort(([a], [b]) => a.localeCompare(b)));
}

function syncCharts(charts, groups, parent, make, update) {
  for (const [key, chart] of charts) {
    if (!groups.has(key)) { chart.destroy(); charts.delete(key); }
  }
  for (const [key, list] of groups) {
    if (!charts.has(key)) charts.set(key, make(key, list));
    update(charts.get(key), list);
  }
}

function alertsNaming(name) {
  return trial.alerts.filter((a) => (a.tensors || []).includes(name));
}

function chosenStat() {
  const select = document.getElementById("layer-stat");
  const present = new Set([...trial.series.values()].map((s) => s.kind));
  const stats = STAT_ORDER.filter((s) => present.has(s));
  if (select.options.length !== stats.length) {
    const current = select.value || "norm";
    select.replaceChildren(...stats.map((s) => ts.el("option", { value: s, text: trial.statLabels[s] || s })));
    select.value = stats.includes(current) ? current : stats[0] || "";
  }
  return select.value;
}

function renderHeader() {
  const s = trial.summary;
  if (!s) return;
  document.getElementById("status").replaceChildren(ts.el("span", { class: `badge status-${s.status}`, text: s.status }));
  const age = s.last_ts == null ? "–" : ts.age(ts.now() - s.last_ts);
  const objective = s.objective ? ` · ${s.objective.metric} final ${ts.num(s.objective.final)}, best ${ts.num(s.objective.best)}` : "";
  document.getElementById("facts").textContent =
    `workers ${s.workers.join(", ") || "–"} · last step ${s.last_step ?? "–"} · last event ${age}${objective}`;
  document.getElementById("alert-counts").innerHTML = "";
  document.getElementById("alert-counts").append(
    ...["error", "warning", "info"].map((sev) => ts.el("span", { class: `sev-${sev}`, text: ` ${s.alerts[sev]} ${sev} ` })));
}

function renderModes() {
  const modes = new Set([...trial.series.values()].map((s) => s.mode));
  const holder = document.getElementById("modes");
  const shown = [...holder.querySelectorAll("input")].map((i) => i.value);
  const wanted = [...modes].sort();
  if (shown.join() === wanted.join()) return;
  holder.replaceChildren(...wanted.map((mode) => {
    const box = ts.el("input", { type: "checkbox", value: mode, class: "mode-toggle" });
    box.checked = !trial.hiddenModes.has(mode);
    box.addEventListener("change", () => {
      if (box.checked) trial.hiddenModes.delete(mode); else trial.hiddenModes.add(mode);
      render();
    });
    return ts.el("label", {}, box, ` ${mode} `);
  }));
}

function renderAlerts() {
  const rows = [...trial.alerts].reverse().map((a) => ts.el("tr", { class: "alert-row", "data-rule": a.rule },
    ts.el("td", { class: "num", text: String(a.step) }), ts.el("td", { text: a.worker }), ts.el("td", { text: a.mode }),
    ts.el("td", { text: a.rule === a.rule_type ? a.rule : `${a.rule} (${a.rule_type})` }),
    ts.el("td", { class: `sev-${a.severity}`, text: a.severity }), ts.el("td", { class: "message", text: a.message })));
  document.querySelector("#alerts tbody").replaceChildren(...rows);
  document.getElementById("no-alerts").hidden = rows.length > 0;
}

document.getElementById("trial-name").textContent = TRIAL;
document.title = `trainsentry · ${TRIAL}`;
document.getElementById("log-scale").addEventListener("change", render);
document.getElementById("layer-stat").addEventListener("change", render);
window.addEventListener("resize", () => {
  for (const chart of [...trial.curveCharts.values(), ...trial.layerCharts.values()]) chart.resize();
});
setInterval(renderHeader, 1000);
ts.live(`/api/events?trial=${encodeURIComponent(TRIAL)}`, { trial: applyLive }, loadTrial);
