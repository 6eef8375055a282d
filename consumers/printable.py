"""Text from the stream shown safely on one line of a terminal, a chat message or a mail.

Trial, worker, rule and tensor names and alert messages are written by someone else's program: a
newline in a trial name must not forge a second line, a NUL or an escape sequence must not reach the
terminal, a right-to-left override must not reorder what is shown. Every character that is not
printable (``str.isprintable``: control, format and separator characters other than the space) is
written as its Python escape, so the text stays one line and still tells what was there.

>>> printable("run-1")
'run-1'
>>> printable("evil\\nALERT forged\\x00\\x1b[31m")
'evil\\\\nALERT forged\\\\x00\\\\x1b[31m'
>>> printable("\\u202eabc")
'\\\\u202eabc'
>>> printable("x" * 10, limit=5)
'xxxx…'
"""

from __future__ import annotations

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str, limit: int | None = None) -> str:
    """``text`` with every non-printable character escaped; cut to ``limit`` characters with ``…``."""
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else _escape(ch) for ch in text)
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)] + "…"
    return text


def _escape(ch: str) -> str:
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
