"""Destination URLs carry secrets (passwords, tokens, webhook paths): show them without those.

A destination is shown as its scheme and, when the host is a host name or an address, the host and
port; everything that may be a credential is ``***``. Services such as Slack or Discord put tokens
where a host would be (``slack://TokenA/TokenB/TokenC``), so a "host" that looks like no host name
is hidden too. :meth:`Redactor.scrub` removes every secret part of a URL from any text (an error
from the notification library, a log line), also percent-decoded.

>>> label("json://127.0.0.1:8080/hooks/s3cr3t?token=abc")
'json://127.0.0.1:8080/***'
>>> label("mailto://bob:hunter2@mail.example.com?smtp=127.0.0.1&to=ops@example.com")
'mailto://***@mail.example.com'
>>> label("slack://T1234ABCD/B5678EFGH/XXXXXXXXXXXX/#alerts")
'slack://***'
>>> label("not a url")
'***'
>>> Redactor("discord://12345678/SECRETTOKEN").scrub("POST discord.com/api/webhooks/12345678/SECRETTOKEN failed")
'POST discord.com/api/webhooks/***/*** failed'
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qsl, unquote

HIDDEN = "***"
MIN_SECRET_CHARS = 3  # shorter parts are no secret worth hiding, and hiding them mangles text
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.DOTALL)


def label(url: str) -> str:
    """``url`` as it may be shown: scheme, a real host and port, secrets as ``***``."""
    parts = _split(url)
    if parts is None:
        return HIDDEN
    scheme, userinfo, host, port, path, _query = parts
    if not _looks_like_host(host):
        return f"{scheme}://{HIDDEN}"
    shown = f"{scheme}://"
    if userinfo:
        shown += f"{HIDDEN}@"
    shown += host + (f":{port}" if port else "")
    if path.strip("/"):
        shown += f"/{HIDDEN}"
    return shown


class Redactor:
    """Removes the secret parts of one URL from any text."""

    def __init__(self, url: str) -> None:
        secrets = {url}
        parts = _split(url)
        if parts is not None:
            _scheme, userinfo, host, _port, path, query = parts
            secrets.update(re.split(r"[:@]", userinfo))
            if not _looks_like_host(host):
                secrets.add(host)
                secrets.update(host.split(":"))  # a bot token such as 123456:ABC-DEF
            secrets.update(path.split("/"))
            secrets.update(value for _key, value in parse_qsl(query, keep_blank_values=True))
        else:
            secrets.update(re.split(r"[/:@?&=#]", url))
        secrets |= {unquote(s) for s in secrets}
        # Longest first: a secret that contains another is replaced whole.
        self._secrets = sorted((s for s in secrets if len(s) >= MIN_SECRET_CHARS), key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, HIDDEN)
        return text


def _split(url: str) -> tuple[str, str, str, str, str, str] | None:
    """(scheme, userinfo, host, port, path, query); by hand, since tokens such as ``123:ABC`` in
    the host place break :func:`urllib.parse.urlsplit`."""
    match = _SCHEME.match(url.strip())
    if match is None:
        return None
    scheme, rest = match.groups()
    rest, _, query = rest.partition("?")
    authority, slash, path = rest.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    if not at:
        userinfo, hostport = "", authority
    host, port = hostport, ""
    if hostport.startswith("["):  # [IPv6]:port
        host, _, tail = hostport.partition("]")
        host += "]"
        port = tail[1:] if tail.startswith(":") else ""
    elif hostport.count(":") == 1 and hostport.partition(":")[2].isdigit():
        host, port = hostport.split(":")
    return scheme.lower(), userinfo, host, port, slash + path, query


def _looks_like_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        pass
    labels = host.split(".")
    return len(labels) >= 2 and all(re.fullmatch(r"[A-Za-z0-9-]{1,63}", part) for part in labels) \
        and not labels[-1].isdigit()
