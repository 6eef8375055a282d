"""The engine: one object that routes events to the rules and owns all their state.

It wires the parts together (routing, series in order, alerts, logs and metrics, notices) around
one :class:`~trainsentry.consumers.state.StateStore` that holds everything kept per trial, and
offers what drivers, sources and sinks use: :meth:`Engine.process`, the end of input, forgetting a
trial, the size of the state, and snapshots of chosen trials.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from trainsentry.consumers.state import MemoryStore, StateStore, TrialSlotView
from trainsentry.protocol import Event
from trainsentry.rules.base import MODES, Rule
from trainsentry.rules.config import Config
from trainsentry.rules.metrics import MatchBudgets, MetricExtractor
from trainsentry.rules.objective import ObjectiveTracker

from .alerts import Alerts
from .capacity import TrialCapacity
from .clock import ClockFeed
from .limits import EngineLimits
from .logs import LogFeed
from .notices import Notices
from .routing import Router
from .series import NO_EVENTS, SeriesFeed
from .snapshot import Snapshots
from .stats import EngineStats
from .steps import StepOutliers
from .trial import DISABLED, METRIC_EXCESS, OBJECTIVE, TrialBook, Trials


class Engine:
    """Routes events to the configured rules and metric definitions; returns alerts and metrics.

    A pure function of the event sequence (and of the clock its source gives,
    :meth:`advance_clock`): no I/O, no clock of its own, no asyncio (see the package's
    docstring). Everything held per trial is in :attr:`store`.
    """

    def __init__(self, config: Config, limits: EngineLimits | None = None) -> None:
        self.config = config
        self.limits = limits = limits or EngineLimits()
        self.rules: tuple[Rule, ...] = tuple(rule.build() for rule in config.rules)
        self._store: StateStore = MemoryStore(shared=_constants(config, self.rules))
        self.objectives: ObjectiveTracker | None = (
            ObjectiveTracker(config.objective, TrialSlotView(self._store, OBJECTIVE))
            if config.objective else None)
        self._extractor = (
            MetricExtractor(config.metrics, disabled=TrialSlotView(self._store, DISABLED),
                            excess=TrialSlotView(self._store, METRIC_EXCESS),
                            budgets=MatchBudgets(line=config.metric_time_budget_ms / 1000.0,
                                                 batch=limits.metric_batch_budget_ms / 1000.0,
                                                 trial=limits.metric_trial_budget_ms / 1000.0))
            if config.metrics else None)
        self._stats = EngineStats()
        self._notices = Notices()
        self._capacity = TrialCapacity(self._store, limits, self._stats, self._notices)
        self._active: str | None = None  # the trial of the last event (already the most recent)
        self._trials = Trials(self._store, self.objectives, self._capacity)
        self._router = Router(self.rules)
        alerts = Alerts(self.rules, self._stats)
        self._series = SeriesFeed(self.rules, self._store, self._trials, self._router,
                                  alerts, self._notices, self._stats,
                                  self._capacity, StepOutliers(self._stats, self._notices))
        self._clock = ClockFeed(self.rules, self._store, self._trials, alerts, self._notices,
                                self._stats)
        self._logs = LogFeed(self._store, self._trials, self._series, self._extractor,
                             self.objectives, config.metric_time_budget_ms, self._notices,
                             self._stats, self._capacity)
        self._snapshots = Snapshots(config, self.rules, self._store)
        self._dispatch = {"tensor": self._series.on_tensor, "scalar": self._series.evaluate,
                          "log": self._logs.on_log}
        if self._clock.active:  # a rule judges silence: every input event is also heard of
            for kind in ("tensor", "scalar", "log"):
                self._dispatch[kind] = _heard_first(self._clock.heard, self._dispatch[kind])
        self._counts = self._stats.events

    @property
    def store(self) -> StateStore:
        """Everything held per trial (read it to inspect; the engine owns and changes it)."""
        return self._store

    @property
    def stats(self) -> EngineStats:
        """The counters, with the rules' and metric definitions' own counts brought up to date."""
        stats = self._stats
        stats.skipped = {f"{rule.name}: {reason}": count
                         for rule in self.rules for reason, count in rule.skipped.items()}
        if self._extractor is not None:
            extractor = self._extractor
            stats.unparsable_captures = extractor.unparsable
            stats.regex_timeouts = extractor.timeouts
            stats.regex_matches, stats.regex_seconds = extractor.matches, extractor.seconds
            stats.regex_batch_seconds_max = extractor.batch_seconds_max
            stats.metric_lines_skipped = extractor.skipped_lines
        return stats

    def process(self, event: Event) -> list[Event]:
        """The new metric and alert events ``event`` causes, in order (often none).

        ``metric`` and ``alert`` events are counted and ignored (a replay recomputes them).
        """
        kind = event.type
        try:
            self._counts[kind] += 1
        except KeyError:  # a kind of event this version does not know
            self._counts[kind] = 1
        trial = event.trial
        if trial != self._active:  # events come in runs of one trial: most need no reordering
            self._capacity.touch(trial)
            self._active = trial
        return self._dispatch.get(kind, _ignored)(event)

    def advance_clock(self, now: float) -> list[Event]:
        """The source's clock reads ``now`` (seconds since the epoch): the alerts of the rules that
        judge time (StalledTrainingRule), in order.

        A live source calls it before each batch and at least once a second while nothing
        arrives; from the first call on, a worker's event time is the clock when its event
        arrived. Without calls (a replay) the clock is the newest event ``ts`` read so far
        (:mod:`.clock`). A clock that does not move forward changes nothing.
        """
        return self._clock.advance(now) if self._clock.active else NO_EVENTS

    def clock_horizon(self) -> float | None:
        """The longest silence, in seconds, that a rule judging time waits for before it fires: a
        trial idle for less must not be released (``None``: no such rule)."""
        return self._clock.horizon()

    def begin_batch(self) -> None:
        """A batch of events follows (the driver says so before each): metric matching gets its
        batch's time budget afresh, and trials beyond the state's byte cap are let go."""
        if self._extractor is not None:
            self._extractor.begin_batch()
        self._capacity.fit_bytes()

    def drain_evicted(self) -> list[str]:
        """Trials let go to keep within the caps since the last call (each said once)."""
        return self._capacity.drain_evicted()

    def process_many(self, events: Iterable[Event]) -> list[Event]:
        """Every output of ``events``, in order: :meth:`process` in a loop."""
        out: list[Event] = []
        process = self.process
        for event in events:
            produced = process(event)
            if produced:
                out.extend(produced)
        return out

    def end_of_input(self) -> list[Event]:
        """Nothing is ever pending (verdicts are emitted at once); the end-of-input notices are queued."""
        notices = self._notices
        for trial in self._store.trials():
            state = self._store.find(trial)
            book: TrialBook | None = None if state is None else state.head
            if book is None:
                continue
            notices.unselected(trial, state, self.rules, at_end=True)
            if book.late or book.duplicate or book.duplicate_lines:
                notices.about(state, "summary", f"trial {trial!r}: ignored {book.late} late and "
                              f"{book.duplicate} duplicate tensor/scalar events and "
                              f"{book.duplicate_lines} redelivered log lines")
        if self.objectives is not None:
            for trial in self.objectives.never_emitted():
                state = self._store.find(trial)
                if state is not None and state.head is not None:
                    notices.about(state, "objective", f"trial {trial!r} never emitted the "
                                  f"objective metric {self.objectives.objective.metric!r}")
        for key, count in self.stats.skipped.items():
            notices.once(f"rule {key}: {count} selected inputs skipped")
        return []

    def forget_trial(self, trial: str) -> None:
        """Release every byte held for ``trial`` (rules' states, series, metric steps, objective)."""
        self._store.drop(trial)
        self._capacity.forgot(trial)
        self._clock.forget(trial)

    def trials(self) -> list[str]:
        """The trials held, in the order they were first seen."""
        return self._store.trials()

    def drain_ended(self) -> list[str]:
        """Trials whose every worker has sent its end marker since the last call (each once)."""
        return self._logs.drain_ended()

    def drain_notices(self) -> list[str]:
        """One-line messages for people, each said once, since the last call."""
        return self._notices.drain()

    def state_bytes(self) -> int:
        """Bytes held: every trial's state (deep sizes) and the routing caches.

        Only what changed since the last call is sized again: ask as often as a gauge needs,
        not per event.
        """
        return self._store.state_bytes() + self._router.cache_bytes() + self._clock.held_bytes()

    def snapshot(self, trials: Iterable[str]) -> bytes:
        """The state of those of ``trials`` that are held, as bytes for :meth:`restore`."""
        return self._snapshots.take(trials)

    def restore(self, data: bytes) -> list[str]:
        """Hold the trials of a :meth:`snapshot`, replacing what is held for them; their ids.

        Raises :class:`~trainsentry.consumers.state.SnapshotError` (nothing is changed) for bytes
        that are not a snapshot of an engine of this version and configuration, or are corrupt.
        """
        trials = self._snapshots.restore(data)
        self._capacity.restored(trials)
        self._clock.restored(trials)
        return trials


def _constants(config: Config, rules: tuple[Rule, ...]) -> list[str]:
    """Strings of the configuration that keys and states refer to without holding them."""
    views = [view for rule in rules for views in rule.views_by_mode.values() for view in views]
    return [*MODES, *(view.key for view in views), *(view.mode for view in views),
            *(rule.name for rule in rules), *(metric.name for metric in config.metrics)]


def _heard_first(heard: Callable[[Event], list[Event]],
                 handle: Callable[[Event], list[Event]]) -> Callable[[Event], list[Event]]:
    """``handle``, after the clocked rules have heard of the event (and a replay's clock moved)."""

    def handle_heard(event: Event) -> list[Event]:
        before = heard(event)
        after = handle(event)
        return before + after if before else after

    return handle_heard


def _ignored(event: Event) -> list[Event]:
    """What a ``metric`` or ``alert`` event causes: nothing (a replay recomputes them)."""
    return NO_EVENTS
