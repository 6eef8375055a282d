"""Destinations: one apprise URL each (Slack, Teams, Discord, email, a JSON webhook and 100+ more).

apprise is the notification library: one URL syntax for every service, maintained, BSD-licensed,
and its URLs are what people already paste from its wiki (``slack://``, ``msteams://``,
``discord://``, ``mailto://``, ``json://``...). Each URL becomes its own
:class:`apprise.Apprise` object, so each destination succeeds or fails on its own.

apprise logs to the ``apprise`` logger, and at DEBUG it (and urllib3 below it) logs full webhook
URLs. A filter on those loggers (:func:`bridge_library_logs`) rewrites every record without any
destination's secrets before a handler sees it, and lets them through only at DEBUG; apprise's
warnings during one send are kept as that send's failure reason.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import apprise

from .message import Notification
from .redaction import Redactor, label
from .severity import Severity

log = logging.getLogger("trainsentry.notify")
REASON_CHARS = 300
# A logger's filters see only the records logged to it, so each logger that names URLs is listed.
LIBRARY_LOGGERS = ("apprise", "urllib3.connectionpool", "urllib3.poolmanager", "urllib3.connection",
                   "urllib3.util.retry", "urllib3.response")

_NOTIFY_TYPE = {Severity.INFO: apprise.NotifyType.INFO, Severity.WARNING: apprise.NotifyType.WARNING,
                Severity.ERROR: apprise.NotifyType.FAILURE}
# The warnings apprise logs during one send, gathered for that send only (sends run in threads).
_capture: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("apprise_capture", default=None)


class DestinationError(ValueError):
    """A destination URL that cannot be used; the message shows it without its secrets."""


@dataclass
class Destination:
    """One place messages go."""

    number: int  # 1-based, in the order given: names it in logs when two look alike
    label: str   # the URL without its secrets
    redactor: Redactor = field(repr=False)
    _service: apprise.Apprise = field(repr=False)

    @property
    def name(self) -> str:
        return f"destination {self.number} ({self.label})"

    def send(self, notification: Notification) -> str | None:
        """Deliver one message (blocking: run it in a thread); ``None`` or why it failed."""
        captured: list[str] = []
        token = _capture.set(captured)
        try:
            delivered = bool(self._service.notify(
                body=notification.body, title=notification.title,
                notify_type=_NOTIFY_TYPE[notification.severity], body_format=apprise.NotifyFormat.TEXT))
        except Exception as exc:  # noqa: BLE001 - a plugin's bug is a failed delivery, not a crash
            delivered = False
            captured.append(f"{type(exc).__name__}: {exc}")
        finally:
            _capture.reset(token)
        if delivered:
            return None
        reason = "; ".join(dict.fromkeys(line.rstrip(". ") for line in captured)) \
            or "the service did not accept the message"
        return self.redactor.scrub(reason)[:REASON_CHARS]


def parse_destinations(urls: Iterable[str]) -> list[Destination]:
    """One :class:`Destination` per URL; :class:`DestinationError` names the first bad one."""
    asset = apprise.AppriseAsset(app_id="trainsentry", app_desc="trainsentry alerts",
                                 app_url="https://pypi.org/project/trainsentry/")
    destinations = []
    for number, url in enumerate(urls, 1):
        service = apprise.Apprise(asset=asset)
        shown = label(url)
        with _quiet_apprise():
            added = service.add(url)
        if not added or len(service) == 0:
            raise DestinationError(f"destination {number} ({shown}): not a notification URL apprise "
                                   f"knows (see its wiki for the URL of each service)")
        destinations.append(Destination(number, shown, Redactor(url), service))
    if not destinations:
        raise DestinationError("no destination: give --to URL (repeatable) or `to` in the [notify] table")
    bridge_library_logs([d.redactor for d in destinations])
    return destinations


class _ScrubSecrets(logging.Filter):
    """Rewrites each record of a library's logger without any destination's secrets, before any
    handler sees it; keeps apprise's warnings as the failure reason of the send in progress, and
    lets records through only when the notifier itself logs at DEBUG (apprise's own warnings would
    otherwise repeat every failed attempt)."""

    def __init__(self, redactors: list[Redactor], capture: bool) -> None:
        super().__init__()
        self.redactors = redactors
        self.capture = capture

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed library record: dropped, never shown raw
            return False
        for redactor in self.redactors:
            text = redactor.scrub(text)
        record.msg, record.args = text, None
        captured = _capture.get() if self.capture else None
        if captured is not None and record.levelno >= logging.WARNING:
            captured.append(text)
        return log.isEnabledFor(logging.DEBUG)


def bridge_library_logs(redactors: list[Redactor]) -> None:
    """Put :class:`_ScrubSecrets` on apprise's and urllib3's loggers (replacing an earlier one)."""
    debugging = log.isEnabledFor(logging.DEBUG)
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, _ScrubSecrets)]:
            logger.removeFilter(old)
        logger.addFilter(_ScrubSecrets(redactors, capture=name == "apprise"))
        if name == "apprise":  # its warnings are needed as reasons, shown or not
            logger.setLevel(logging.DEBUG if debugging else logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.DEBUG if debugging else logging.WARNING)


class _quiet_apprise:
    """While URLs are parsed, apprise's complaints (which quote the URL) are dropped."""

    def __enter__(self) -> None:
        self.logger = logging.getLogger("apprise")
        self.saved = self.logger.disabled
        self.logger.disabled = True

    def __exit__(self, *exc: object) -> None:
        self.logger.disabled = self.saved
