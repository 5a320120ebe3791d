"""Storage URLs: parsing and redaction of secrets.

``scheme://[user[:password]@]host[:port][,host[:port]...][/path][?opt=value&...]``

Passwords and secret-looking query options never appear in ``repr``/``str``
of a :class:`StorageURL` or in :func:`redact_url` output.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidURL

__all__ = [
    "StorageURL",
    "is_secret_option",
    "parse_url",
    "redact_secrets",
    "redact_url",
]

_SECRET_WORDS = ("password", "passwd", "secret", "token", "credential", "key_id", "auth")
REDACTED = "***"


def is_secret_option(name: str) -> bool:
    """Whether an option of this name holds something that must not be shown."""
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


@dataclass(frozen=True, repr=False)
class StorageURL:
    """A parsed storage URL; ``str()`` and ``repr()`` hide the password."""

    scheme: str
    username: str | None = None
    password: str | None = None
    hosts: tuple[tuple[str, int | None], ...] = ()
    path: str = ""
    query: Mapping[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str | None:
        return self.hosts[0][0] if self.hosts else None

    @property
    def port(self) -> int | None:
        return self.hosts[0][1] if self.hosts else None

    def render(self, *, redact: bool = True) -> str:
        """Rebuild the URL text, with secrets replaced by ``***`` unless ``redact=False``."""
        out = f"{self.scheme}://"
        if self.username is not None or self.password is not None:
            out += quote(self.username or "", safe="")
            if self.password is not None:
                out += ":" + (REDACTED if redact else quote(self.password, safe=""))
            out += "@"
        out += ",".join(
            (f"[{h}]" if ":" in h else h) + (f":{p}" if p is not None else "")
            for h, p in self.hosts
        )
        out += self.path
        if self.query:
            out += "?" + "&".join(
                f"{quote(k, safe='')}="
                + (REDACTED if redact and is_secret_option(k) else quote(v, safe=""))
                for k, v in self.query.items()
            )
        return out

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"StorageURL({self.render()!r})"


def parse_url(url: str) -> StorageURL:
    """Parse a storage URL; raise :class:`InvalidURL` (without echoing secrets) if malformed."""
    if not isinstance(url, str):
        raise InvalidURL(f"storage URL must be a str, not {type(url).__name__}")
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        raise InvalidURL(f"not a storage URL (expected scheme://...): {_safe(url)!r}")
    scheme = scheme.lower()
    rest = rest.partition("#")[0]
    rest, _, query_text = rest.partition("?")
    slash = rest.find("/")
    netloc, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    username = password = None
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, colon, pw = userinfo.partition(":")
        username = unquote(user) if user else None
        password = unquote(pw) if colon else None
    hosts: list[tuple[str, int | None]] = []
    if netloc:
        for part in netloc.split(","):
            hosts.append(_parse_host(part, url))
    try:
        pairs = _parse_query(query_text)
    except ValueError as err:
        raise InvalidURL(f"bad query string in {_safe(url)!r}: {err}") from None
    query: dict[str, str] = {}
    for key, value in pairs:
        if key in query:
            raise InvalidURL(f"option {key!r} given twice in {_safe(url)!r}")
        query[key] = value
    return StorageURL(scheme, username, password, tuple(hosts), unquote(path), query)


# urllib.parse (with ipaddress) is imported only for text that needs it: plain
# URLs such as "memory://" are the common case at start-up.
def unquote(text: str) -> str:
    """``urllib.parse.unquote``."""
    if "%" not in text:
        return text  # what unquote returns for it
    from urllib.parse import unquote

    return unquote(text)


def quote(text: str, safe: str = "/") -> str:
    """``urllib.parse.quote``."""
    from urllib.parse import quote

    return quote(text, safe=safe)


def _parse_query(text: str) -> list[tuple[str, str]]:
    if not text:
        return []  # what parse_qsl returns for it
    from urllib.parse import parse_qsl

    return parse_qsl(text, keep_blank_values=True, strict_parsing=False)


def _parse_host(part: str, url: str) -> tuple[str, int | None]:
    if part.startswith("["):
        host, bracket, after = part[1:].partition("]")
        if not bracket or not host or (after and not after.startswith(":")):
            raise InvalidURL(f"bad IPv6 host in {_safe(url)!r} (write it as [address]:port)")
        port_text = after[1:]
    else:
        host, _, port_text = part.partition(":")
    if not port_text:
        return unquote(host), None
    # The port text is not echoed: with an unencoded "/", "?" or "#" in a
    # password, what looks like host:port is really the start of the password.
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InvalidURL(
            f"bad host or port in {_safe(url)!r} "
            "(percent-encode any '/', '?', '#' or '@' in the password)"
        )
    return unquote(host), int(port_text)


def redact_url(url: str) -> str:
    """Return ``url`` with its password and secret options replaced by ``***``."""
    try:
        return parse_url(url).render()
    except InvalidURL:
        return _safe(url)


def redact_secrets(
    text: str,
    *,
    url: str | None = None,
    options: Mapping[str, Any] | None = None,
    secrets: Iterable[str] = (),
) -> str:
    """Return ``text`` (an error message, a log line) with every secret replaced by ``***``.

    Secrets are the password and secret query options of ``url``, the values
    of secret-looking ``options`` (see :func:`is_secret_option`), and
    ``secrets``; each is also hidden in its percent-encoded form.
    """
    found = [str(v) for k, v in (options or {}).items() if v is not None and is_secret_option(k)]
    found += list(secrets)
    if url:
        text = text.replace(url, redact_url(url))
        try:
            parsed = parse_url(url)
        except InvalidURL:
            parsed = None
        if parsed is not None:
            found.append(parsed.password or "")
            found += [v for k, v in parsed.query.items() if is_secret_option(k)]
    for secret in sorted(filter(None, found), key=len, reverse=True):
        text = text.replace(secret, REDACTED).replace(quote(secret, safe=""), REDACTED)
    return text


def _safe(url: object) -> str:
    """Best-effort redaction of text that did not parse as a URL."""
    text = str(url)
    scheme, sep, rest = text.partition("://")
    # Hide everything between the first ":" and the last "@": a password may
    # hold unencoded "/", "?" or "#", and over-hiding in an error message is fine.
    colon, at = rest.find(":"), rest.rfind("@")
    if sep and 0 <= colon < at:
        return f"{scheme}://{rest[:colon]}:{REDACTED}@{rest[at + 1 :]}"
    return text
