"""The report's pictures, drawn with matplotlib (Agg: no display) and inlined as ``data:`` URIs.

- :func:`curves_figure`: a trial's scalar and metric curves by step, one line per (worker, mode),
  each alert as a marker on the curve it names at its step, and the rule's threshold (dashed) where
  the alert's details carry one in the curve's units;
- :func:`alert_timeline_figure`: the alerts of a trial by step, one row per (rule, worker);
- :func:`layer_stats_figure`: the statistics of weights and gradients by step, one panel per
  statistic, one line per (tensor, worker, mode).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterable, Sequence

import matplotlib

matplotlib.use("Agg")  # before pyplot: never look for a display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from trainsentry.consumers.runs import STATS, SeriesKey, TrialRecord, severity_of  # noqa: E402
from trainsentry.consumers.runs.layer_stats import STAT_LABELS  # noqa: E402
from trainsentry.protocol import AlertEvent  # noqa: E402

SEVERITY_COLORS = {"error": "#d92d20", "warning": "#dc6803", "info": "#1570ef"}
MODE_STYLES = {"TRAIN": "-", "EVAL": "--", "PREDICT": ":", "GLOBAL": "-."}
MAX_PANELS = 24        # curves drawn per trial; the rest are listed by name
MAX_LEGEND_LINES = 12
DPI = 96


def png_data_uri(figure: Figure) -> str:
    """The figure as a PNG ``data:`` URI; the figure is closed."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def curve_names(record: TrialRecord) -> list[tuple[str, str]]:
    """(kind, name) of the trial's scalar and metric curves, sorted."""
    return sorted({(k.kind, k.name) for k in record.series if k.kind in ("scalar", "metric")})


def curves_figure(record: TrialRecord, names: Sequence[tuple[str, str]]) -> Figure:
    columns = 2 if len(names) > 1 else 1
    rows = math.ceil(len(names) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(6.2 * columns, 3.2 * rows), squeeze=False)
    for panel, (kind, name) in zip(axes.flat, names, strict=False):
        keys = sorted((k for k in record.series if k.kind == kind and k.name == name),
                      key=lambda k: (k.worker, k.mode))
        for key in keys:
            series = record.series[key]
            panel.plot(series.steps(), _plottable(series.values()), MODE_STYLES.get(key.mode, "-"), linewidth=1.3,
                       label=f"worker {key.worker} · {key.mode}")
        _alert_markers(panel, record, keys, [a for a in record.alerts if name in a.tensors])
        panel.set_title(f"{name} (metric)" if kind == "metric" else name, fontsize=10)
        panel.set_xlabel("step", fontsize=8)
        panel.tick_params(labelsize=8)
        panel.grid(alpha=0.25)
        if len(keys) <= MAX_LEGEND_LINES:
            panel.legend(fontsize=7, loc="best")
    for panel in list(axes.flat)[len(names):]:
        panel.set_visible(False)
    figure.tight_layout()
    return figure


def _plottable(values: list[float]) -> list[float]:
    """Infinities as gaps, like NaN (the axes would otherwise stretch to nothing)."""
    return [v if math.isfinite(v) else math.nan for v in values]


def _alert_markers(panel, record: TrialRecord, keys: Sequence[SeriesKey], alerts: Iterable[AlertEvent]) -> None:
    for alert in alerts:
        key = _curve_of(alert, keys)
        value = record.series[key].value_at(alert.step) if key is not None else None
        color = SEVERITY_COLORS[severity_of(alert)]
        if value is None or not math.isfinite(value):
            panel.axvline(alert.step, color=color, linewidth=0.8, alpha=0.6)
        else:
            panel.plot([alert.step], [value], marker="D", color=color, markersize=6,
                       markeredgecolor="white", linestyle="none", zorder=5)
        threshold = alert.details.get("threshold") if isinstance(alert.details, dict) else None
        named = alert.details.get("tensor") in (None, *alert.tensors) if isinstance(alert.details, dict) else False
        if isinstance(threshold, (int, float)) and math.isfinite(threshold) and named:
            start = alert.details.get("reference_step", alert.step)
            start = start if isinstance(start, int) and start < alert.step else alert.step - 1
            panel.hlines(threshold, start, alert.step, colors=color, linestyles="dashed", linewidth=1)


def _curve_of(alert: AlertEvent, keys: Sequence[SeriesKey]) -> SeriesKey | None:
    for match in (lambda k: k.worker == alert.worker and k.mode == alert.mode,
                  lambda k: k.worker == alert.worker):
        for key in keys:
            if match(key):
                return key
    return None


def alert_timeline_figure(alerts: Sequence[AlertEvent]) -> Figure:
    rows = sorted({(a.rule, a.worker) for a in alerts})
    index = {row: i for i, row in enumerate(rows)}
    figure, panel = plt.subplots(figsize=(12.4, 0.9 + 0.38 * len(rows)))
    for severity, color in SEVERITY_COLORS.items():
        chosen = [a for a in alerts if severity_of(a) == severity]
        if chosen:
            panel.scatter([a.step for a in chosen], [index[(a.rule, a.worker)] for a in chosen],
                          marker="D", s=26, color=color, label=severity, zorder=3)
    panel.set_yticks(range(len(rows)), [f"{rule} · worker {worker}" for rule, worker in rows], fontsize=8)
    panel.set_ylim(-0.6, len(rows) - 0.4)
    panel.set_xlabel("step at which the rule fired", fontsize=8)
    panel.tick_params(axis="x", labelsize=8)
    panel.grid(axis="x", alpha=0.25)
    panel.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.tight_layout()
    return figure


def layer_stats_figure(record: TrialRecord) -> Figure | None:
    stats = [s for s in STATS if any(k.kind == s for k in record.series)]
    if not stats:
        return None
    columns = 2
    rows = math.ceil(len(stats) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(12.4, 3.0 * rows), squeeze=False)
    for panel, stat in zip(axes.flat, stats, strict=False):
        keys = sorted((k for k in record.series if k.kind == stat), key=lambda k: (k.name, k.worker, k.mode))
        for key in keys:
            series = record.series[key]
            panel.plot(series.steps(), _plottable(series.values()), MODE_STYLES.get(key.mode, "-"), linewidth=1.2,
                       label=f"{key.name} · w{key.worker} · {key.mode}")
        panel.set_title(STAT_LABELS[stat], fontsize=10)
        panel.set_xlabel("step", fontsize=8)
        panel.tick_params(labelsize=8)
        panel.grid(alpha=0.25)
        if len(keys) <= MAX_LEGEND_LINES:
            panel.legend(fontsize=7, loc="best")
    for panel in list(axes.flat)[len(stats):]:
        panel.set_visible(False)
    figure.tight_layout()
    return figure
