"""The postmortem report (``trainsentry report``): one self-contained HTML file per replay.

:func:`build_report` drives the engine over a source with the one driver, keeps what it needs to
draw (:mod:`.replay_collect`), draws with matplotlib (:mod:`.figures`) and writes the document
(:mod:`.html_document`).
"""

from __future__ import annotations

import time

from trainsentry.consumers.engine import Engine
from trainsentry.consumers.sources.base import Source
from trainsentry.rules.config import Config

from .html_document import ReportContext, render_report
from .replay_collect import InputAccount, replay_for_report


async def build_report(config: Config, source: Source, trials: frozenset[str] | None, *,
                       sources: list[str], config_path: str, config_text: str) -> tuple[str, InputAccount]:
    """Replay ``source`` through an engine running ``config``: the report's HTML and the account
    of the input it read."""
    engine = Engine(config)
    objective = config.objective
    collection, account = await replay_for_report(
        engine, source, trials, objective_type=objective.type if objective else "Minimize")
    context = ReportContext(sources, config_path, config_text, config, time.time())
    return render_report(collection, account, engine, context), account


__all__ = ["InputAccount", "ReportContext", "build_report", "render_report", "replay_for_report"]
