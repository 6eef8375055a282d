"""Progress of a long command on a terminal: events, events/s, how far through the input, alerts.

``record``, ``replay`` and ``demo`` show one live line on standard error while they work::

    ⠋ replay  ━━━━━━━━━━━━━━━━╸━━━━━━━━  61%  41.2/67.5 MB  1,204,311 events  310,254/s  17 alerts  0:00:04

and nothing at all when standard error is not a terminal (a pipe, a file, CI): their output is
then exactly what it was. The line is erased when the command ends; its summary says the rest.

Counts are either pushed (:meth:`CommandProgress.add`, :meth:`CommandProgress.set_position`) or
pulled from callables given at construction (read at each refresh, four times a second, from
rich's refresh thread: they must only read). Notices for people (a trial ended, a trial never
emitted its objective) go through :meth:`CommandProgress.notice`, which prints each text once,
above the live line on a terminal and as a plain ``trainsentry: ...`` line otherwise.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable
from typing import IO

from rich.console import Console
from rich.progress import Progress, ProgressColumn, SpinnerColumn, Task, TextColumn, TimeElapsedColumn
from rich.progress_bar import ProgressBar
from rich.text import Text

PROG = "trainsentry"
RATE_WINDOW_SECONDS = 3.0
Position = tuple[int, "int | None"]  # (done, total); total None when unknown


class CommandProgress:
    """One command's live progress line; a context manager, inert off a terminal."""

    def __init__(self, description: str, *, unit: str = "bytes",
                 events: Callable[[], int] | None = None, alerts: Callable[[], int] | None = None,
                 position: Callable[[], Position] | None = None, stream: IO[str] | None = None,
                 enabled: bool | None = None) -> None:
        self.description = description
        self.unit = unit  # "bytes" (shown as MB), or a noun for counted positions ("offsets", "steps")
        self._events_of = events
        self._alerts_of = alerts
        self._position_of = position
        self._events = self._alerts = 0
        self._position: Position = (0, None)
        self._said: set[str] = set()
        # ``enabled`` forces the choice (and the console with it); by default a terminal decides.
        self.console = Console(file=stream or sys.stderr, highlight=False, markup=False, emoji=False,
                               force_terminal=enabled)
        self.enabled = self.console.is_terminal if enabled is None else enabled
        self._live: Progress | None = None

    # --- what the command reports ---------------------------------------------------------------

    def add(self, events: int = 0, alerts: int = 0) -> None:
        self._events += events
        self._alerts += alerts

    def set_position(self, done: int, total: int | None) -> None:
        self._position = (done, total)

    def follow_position(self, position: Callable[[], Position]) -> None:
        """Read how far through the input from ``position`` from now on (a source's own count)."""
        self._position_of = position

    def notice(self, text: str) -> None:
        """Say ``text`` to the person running the command, once however often it is asked."""
        if text in self._said:
            return
        self._said.add(text)
        if self._live is not None:
            self._live.console.print(Text(f"{PROG}: {text}"))
        else:
            print(f"{PROG}: {text}", file=sys.stderr)

    # --- what the line shows --------------------------------------------------------------------

    @property
    def events(self) -> int:
        return self._events_of() if self._events_of is not None else self._events

    @property
    def alerts(self) -> int:
        return self._alerts_of() if self._alerts_of is not None else self._alerts

    @property
    def position(self) -> Position:
        return self._position_of() if self._position_of is not None else self._position

    def __enter__(self) -> CommandProgress:
        if self.enabled:
            self._live = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), _Bar(self), _Where(self),
                _Counts(self), TimeElapsedColumn(),
                console=self.console, transient=True, refresh_per_second=4)
            self._live.add_task(self.description, total=None)
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.stop()


class _Bar(ProgressColumn):
    def __init__(self, progress: CommandProgress) -> None:
        super().__init__()
        self.progress = progress

    def render(self, task: Task) -> ProgressBar:
        done, total = self.progress.position
        return ProgressBar(total=float(total) if total else None, completed=float(done), width=24)


class _Where(ProgressColumn):
    def __init__(self, progress: CommandProgress) -> None:
        super().__init__()
        self.progress = progress

    def render(self, task: Task) -> Text:
        return Text(describe_position(*self.progress.position, unit=self.progress.unit))


class _Counts(ProgressColumn):
    def __init__(self, progress: CommandProgress) -> None:
        super().__init__()
        self.progress = progress
        self.samples: deque[tuple[float, int]] = deque()

    def render(self, task: Task) -> Text:
        now, events = time.monotonic(), self.progress.events
        self.samples.append((now, events))
        while len(self.samples) > 2 and now - self.samples[0][0] > RATE_WINDOW_SECONDS:
            self.samples.popleft()
        then, before = self.samples[0]
        rate = (events - before) / (now - then) if now > then else 0.0
        return Text(f"{events:,} events  {rate:,.0f}/s  {self.progress.alerts:,} alerts")


def describe_position(done: int, total: int | None, unit: str = "bytes") -> str:
    """How far through the input, in words.

    >>> describe_position(43_200_000, 67_500_000)
    '64%  43.2/67.5 MB'
    >>> describe_position(1200, 5000, unit="offsets")
    '24%  1,200/5,000 offsets'
    >>> describe_position(1200, None, unit="offsets")
    '1,200 offsets'
    """
    if unit == "bytes":
        amount = f"{done / 1e6:.1f}" + (f"/{total / 1e6:.1f}" if total else "") + " MB"
    else:
        amount = f"{done:,}" + (f"/{total:,}" if total else "") + f" {unit}"
    if not total:
        return amount
    return f"{min(100, 100 * done // total)}%  {amount}"
