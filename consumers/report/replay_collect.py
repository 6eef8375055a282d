"""The replay behind a report: the engine driven over a source, inputs and outputs kept for plotting.

The one driver runs the engine as every replay does; the report watches both ends of it. Its
``admit`` hook sees every decoded input (what the engine takes goes into a
:class:`~trainsentry.consumers.runs.RunCollection`: curves, weight and gradient statistics, end
markers), and :class:`CollectingSink` receives what the engine produced (metrics, alerts) and the
records that were not events. What was left out is counted, with reasons, for the report to say.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from trainsentry.consumers.driver import Driver
from trainsentry.consumers.records import DeadLetter
from trainsentry.consumers.runs import Limits, RunCollection
from trainsentry.consumers.sinks.base import Sink
from trainsentry.consumers.sources.base import Source
from trainsentry.protocol import Event, LogEvent, ScalarEvent, TensorEvent

INPUT_TYPES = (TensorEvent, ScalarEvent, LogEvent)
MAX_REASONS = 20
REPORT_LIMITS = Limits(trials=1_000, series_per_trial=512, points_per_series=1_000,
                       alerts_per_trial=2_000, pending_changes=1)


@dataclass
class InputAccount:
    """What the replay read, left out and could not use."""

    events: int = 0              # inputs the engine took
    filtered_out: int = 0        # other trials than those asked for
    recomputed_skipped: int = 0  # metric and alert events found in the input (recomputed instead)
    invalid: int = 0             # records or objects that are not valid events
    reasons: list[str] = field(default_factory=list)
    undecodable: list[tuple[str, int]] = field(default_factory=list)  # (file, byte offset)
    alerts: int = 0
    metrics: int = 0

    def note_invalid(self, count: int, reasons: Sequence[str]) -> None:
        self.invalid += count
        room = MAX_REASONS - len(self.reasons)
        self.reasons.extend(reasons[:max(room, 0)])


class CollectingSink(Sink):
    """Keeps the engine's outputs in the collection and counts the dead letters."""

    def __init__(self, collection: RunCollection, account: InputAccount) -> None:
        self.collection = collection
        self.account = account

    async def write_batch(self, outputs: Sequence[Event], dead_letters: Sequence[DeadLetter]) -> None:
        for event in outputs:
            if event.type == "alert":
                self.account.alerts += 1
            else:
                self.account.metrics += 1
            self.collection.observe(event)
        if dead_letters:
            self.account.note_invalid(len(dead_letters), [
                f"{d.topic}[{d.partition}]@{d.offset}: {d.reason}" for d in dead_letters])


class InputWatch:
    """The driver's ``admit``: takes the inputs of the chosen trials, records them, counts the rest."""

    def __init__(self, collection: RunCollection, account: InputAccount,
                 trials: frozenset[str] | None) -> None:
        self.collection = collection
        self.account = account
        self.trials = trials

    def __call__(self, event: Event) -> bool:
        if not isinstance(event, INPUT_TYPES):
            self.account.recomputed_skipped += 1
            return False
        if self.trials is not None and event.trial not in self.trials:
            self.account.filtered_out += 1
            return False
        self.account.events += 1
        self.collection.observe(event)
        return True


async def replay_for_report(engine, source: Source, trials: frozenset[str] | None,
                            objective_type: str = "Minimize") -> tuple[RunCollection, InputAccount]:
    """Drive ``engine`` over ``source`` to its end; what was seen and what was left out."""
    collection = RunCollection(REPORT_LIMITS, objective_type=objective_type)
    account = InputAccount()
    driver = Driver(engine, source, [CollectingSink(collection, account)],
                    admit=InputWatch(collection, account, trials))
    await driver.run()
    for path, result in getattr(source, "results", ()):  # a replay file's own account
        account.note_invalid(result.invalid, [f"{path}: {reason}" for reason in result.reasons])
        if result.undecodable_at is not None:
            account.undecodable.append((str(path), result.undecodable_at))
    return collection, account
