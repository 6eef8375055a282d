"""The report as one self-contained HTML document: inline style, pictures as ``data:`` URIs, no script.

Sections: the run at a glance, the objective ranking, per trial (curves with alert markers, the
alert timeline, weight and gradient statistics, the alerts), the configuration used, and what the
input held that was skipped or invalid. Every text from the input is escaped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

from trainsentry.consumers.runs import STATS, RunCollection, SeriesKey, TrialRecord, severity_of
from trainsentry.consumers.runs.layer_stats import STAT_LABELS
from trainsentry.rules.config import Config
from trainsentry.rules.objective import ObjectiveTracker

from .figures import MAX_PANELS, alert_timeline_figure, curve_names, curves_figure, layer_stats_figure, png_data_uri
from .replay_collect import InputAccount

MAX_TRIALS_DRAWN = 50  # trials with pictures; the others are summarised in the tables

STYLE = """
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;background:#f8f9fb}
header,section{margin:1rem 1.4rem;background:#fff;border:1px solid #e4e7ec;border-radius:8px;padding:.8rem 1.1rem}
h1{font-size:1.3rem;margin:0 0 .3rem}h2{font-size:1.1rem;margin:.2rem 0 .6rem}h3{font-size:.95rem;margin:1rem 0 .4rem}
table{border-collapse:collapse;margin:.3rem 0}th,td{text-align:left;padding:.3rem .6rem;border-bottom:1px solid #e4e7ec;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#667085}
img{max-width:100%;height:auto;display:block}pre{background:#f2f4f7;padding:.6rem;border-radius:6px;overflow:auto}
.sev-error{color:#d92d20}.sev-warning{color:#dc6803}.sev-info{color:#1570ef}nav a{margin-right:.8rem}
"""


@dataclass(frozen=True)
class ReportContext:
    """What the report says about how it was made."""

    sources: Sequence[str]     # the files, or the cluster and topics
    config_path: str
    config_text: str
    config: Config
    generated_at: float


def render_report(collection: RunCollection, account: InputAccount, engine: Any,
                  context: ReportContext) -> str:
    """The whole document. ``engine`` is the engine that ran (its stats, notices, objective)."""
    trials = list(collection.trials.values())
    parts = [
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>trainsentry report: {escape(', '.join(r.trial for r in trials[:3]) or 'no trial')}</title>",
        f"<style>{STYLE}</style></head><body>",
        _header(trials, account, context),
        _objective(engine.objectives),
    ]
    for number, record in enumerate(trials):
        parts.append(_trial(number, record, drawn=number < MAX_TRIALS_DRAWN))
    parts += [_configuration(context), _input(account, engine), "</body></html>\n"]
    return "\n".join(parts)


# --- sections --------------------------------------------------------------------------------

def _header(trials: Sequence[TrialRecord], account: InputAccount, context: ReportContext) -> str:
    when = datetime.fromtimestamp(context.generated_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    links = " ".join(f'<a href="#trial-{i}">{escape(r.trial)}</a>' for i, r in enumerate(trials))
    facts = _table(["trials", "input events", "alerts", "metric values", "skipped or invalid"],
                   [[len(trials), account.events, account.alerts, account.metrics,
                     account.filtered_out + account.recomputed_skipped + account.invalid]], numeric=True)
    return (f'<header id="summary"><h1>trainsentry postmortem report</h1>'
            f'<p class="muted">generated {when} from {escape(", ".join(context.sources))} '
            f'with {escape(context.config_path)}</p>{facts}<nav>{links}</nav></header>')


def _objective(objectives: ObjectiveTracker | None) -> str:
    if objectives is None:
        return ('<section id="objective"><h2>Objective</h2><p class="muted">The configuration names '
                'no objective metric.</p></section>')
    objective = objectives.objective
    rows = [[rank, r.trial, _num(r.final), r.final_step, _num(r.best), r.best_step, r.values]
            for rank, r in enumerate(objectives.ranking(), 1)]
    table = _table(["rank", "trial", "final", "at step", "best", "at step", "values"], rows)
    never = objectives.never_emitted()
    missing = (f"<p>Never emitted {escape(objective.metric)}: {escape(', '.join(never))}</p>" if never else "")
    return (f'<section id="objective"><h2>Objective: {escape(objective.metric)} ({objective.type})</h2>'
            f'<p class="muted">Trials ranked by their final (last finite) value; best is the best '
            f'finite value in the objective\'s direction.</p>{table}{missing}</section>')


def _trial(number: int, record: TrialRecord, drawn: bool) -> str:
    out = [f'<section class="trial" id="trial-{number}" data-trial="{escape(record.trial)}">',
           f"<h2>Trial {escape(record.trial)}</h2>", _trial_facts(record)]
    alerts = list(record.alerts)
    names = curve_names(record)
    if drawn and names:
        shown = names[:MAX_PANELS]
        out.append("<h3>Curves</h3>")
        out.append(_img("curves", curves_figure(record, shown),
                        f"curves of {record.trial}: " + ", ".join(n for _, n in shown)
                        + f"; {len(alerts)} alert markers"))
        if len(names) > len(shown):
            out.append(f'<p class="muted">Not drawn: {escape(", ".join(n for _, n in names[len(shown):]))}</p>')
    if drawn and alerts:
        out.append("<h3>Alert timeline</h3>")
        out.append(_img("timeline", alert_timeline_figure(alerts), f"alerts of {record.trial} by step, rule and worker"))
    figure = layer_stats_figure(record) if drawn else None
    if figure is not None:
        out.append("<h3>Weights and gradients</h3>")
        out.append(_img("layer-stats", figure, f"weight and gradient statistics of {record.trial}"))
        out.append(_last_layer_stats(record))
    out.append(f"<h3>Alerts ({sum(record.alert_counts.values())})</h3>")
    if alerts:
        rows = [[a.step, a.worker, a.mode, a.rule if a.rule == a.rule_type else f"{a.rule} ({a.rule_type})",
                 _severity(severity_of(a)), a.message] for a in alerts]
        out.append(_table(["step", "worker", "mode", "rule", "severity", "message"], rows, css="alerts"))
        if sum(record.alert_counts.values()) > len(alerts):
            out.append(f'<p class="muted">The newest {len(alerts)} are listed.</p>')
    else:
        out.append('<p class="muted">No alert.</p>')
    out.append("</section>")
    return "\n".join(out)


def _trial_facts(record: TrialRecord) -> str:
    ended = [w for w, done in record.workers.items() if done]
    by_rule = ", ".join(f"{escape(rule)} {count}" for rule, count in sorted(record.alerts_by_rule.items()))
    rows = [["workers", ", ".join(sorted(record.workers)) + (f" ({len(ended)} sent their end marker)" if ended else "")],
            ["modes", " ".join(sorted(record.modes)) or "–"],
            ["last step", "–" if record.last_step is None else record.last_step],
            ["events", record.events],
            ["alerts by rule", by_rule or "none"]]
    if record.series_dropped:
        rows.append(["curves not kept", f"{record.series_dropped} events of curves past the limit"])
    return _table(None, rows, raw_columns={1} if by_rule else set())


def _last_layer_stats(record: TrialRecord) -> str:
    layers = sorted({(k.name, k.worker, k.mode) for k in record.series if k.kind in STATS})
    rows = []
    for name, worker, mode in layers:
        row: list[Any] = [name, worker, mode]
        for stat in STATS:
            series = record.series.get(SeriesKey(stat, name, worker, mode))
            row.append(_num(series.values()[-1]) if series is not None and len(series) else "–")
        rows.append(row)
    return _table(["tensor", "worker", "mode", *(f"last {STAT_LABELS[s]}" for s in STATS)], rows)


def _configuration(context: ReportContext) -> str:
    config = context.config
    rules = [[rule.name, rule.rule_type, json.dumps(dict(rule.params), sort_keys=True, default=str)]
             for rule in config.rules]
    metrics = [[m.name, m.regex] for m in config.metrics]
    out = ['<section id="config"><h2>Configuration</h2>',
           f"<p>{escape(context.config_path)}</p>",
           _table(["rule", "type", "parameters (resolved)"], rules)]
    if metrics:
        out.append(_table(["metric", "regex"], metrics))
    if config.objective:
        out.append(f"<p>objective: {escape(config.objective.metric)} ({config.objective.type})</p>")
    out.append(f"<h3>As given</h3><pre>{escape(context.config_text)}</pre></section>")
    return "\n".join(out)


def _input(account: InputAccount, engine: Any) -> str:
    stats = engine.stats
    rows = [["input events the engine took", account.events],
            ["events of other trials (not asked for)", account.filtered_out],
            ["metric and alert events in the input (recomputed instead)", account.recomputed_skipped],
            ["invalid records or objects", account.invalid],
            ["late tensor/scalar events (ignored)", stats.late],
            ["duplicate tensor/scalar steps (ignored)", stats.duplicate],
            ["redelivered log lines (ignored)", stats.duplicate_log_lines],
            ["tensor/scalar events no rule selects", stats.unselected]]
    rows += [[f"rule {key}", count] for key, count in sorted(stats.skipped.items())]
    out = ['<section id="input"><h2>What was skipped or invalid</h2>', _table(None, rows)]
    if account.reasons:
        out.append("<h3>Invalid input (first reasons)</h3><ul>"
                   + "".join(f"<li>{escape(r)}</li>" for r in account.reasons) + "</ul>")
    for path, offset in account.undecodable:
        out.append(f"<p>{escape(path)}: bytes that cannot be decoded at offset {offset}; "
                   "the rest of that file was not read.</p>")
    notices = engine.drain_notices()
    if notices:
        out.append("<h3>Notices</h3><ul>" + "".join(f"<li>{escape(n)}</li>" for n in notices) + "</ul>")
    out.append("</section>")
    return "\n".join(out)


# --- pieces ----------------------------------------------------------------------------------

def _img(css: str, figure: Any, alt: str) -> str:
    return f'<img class="{css}" alt="{escape(alt)}" src="{png_data_uri(figure)}">'


def _table(header: Sequence[str] | None, rows: Iterable[Sequence[Any]], numeric: bool = False,
           css: str = "", raw_columns: set[int] = frozenset()) -> str:
    head = "" if header is None else "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>"
    body = []
    for row in rows:
        cells = []
        for index, cell in enumerate(row):
            is_num = isinstance(cell, (int, float)) and not isinstance(cell, bool)
            text = cell if index in raw_columns or isinstance(cell, _Raw) else escape(str(cell))
            cells.append(f'<td class="num">{text}</td>' if is_num or numeric else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="{css}">{head}{"".join(body)}</table>'


class _Raw(str):
    """Markup made here, not from the input: put in a cell as it is."""


def _severity(severity: str) -> _Raw:
    return _Raw(f'<span class="sev-{severity}">{severity}</span>')


def _num(value: float | None) -> str:
    if value is None:
        return "–"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.6g}"
