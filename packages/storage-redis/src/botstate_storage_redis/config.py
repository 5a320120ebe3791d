"""Redis URLs and options: parsed and checked before any connection is made.

- ``redis://[[user]:password@]host[:port][/db]``  (port 6379, db 0 by default)
- ``rediss://...``                                  the same over TLS
- ``unix:///path/to/redis.sock?db=0``               a local unix socket
- ``redis+cluster://host:port,host:port,...``       Redis Cluster (startup nodes; db 0 only;
  no TLS in this release)

The ``ssl_*`` options apply to ``rediss://`` only; given with any other scheme
they raise ``ConfigError`` rather than silently connecting in plaintext.
``autopipeline=true`` given for a Redis Cluster raises ``ConfigError`` too:
auto-pipelining is for standalone servers (see :func:`check_mode`).

Options come from the query string and/or keyword arguments (see ``OPTIONS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from botstate import ConfigError, InvalidURL
from botstate.adapter import (
    Choice,
    OptionKind,
    Seconds,
    SecondsOrZero,
    StorageURL,
    coerce_options,
    parse_url,
)

from .plugin import SCHEMES

__all__ = [
    "DEFAULT_URL",
    "OPTIONS",
    "RedisOptions",
    "Target",
    "check_mode",
    "client_settings",
    "parse_target",
    "pool_settings",
]

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PORT = 6379

OPTIONS: dict[str, OptionKind] = {
    "prefix": str,
    "socket_timeout": Seconds,
    "socket_connect_timeout": Seconds,
    "max_connections": int,
    "autopipeline": bool,
    "health_check_interval": SecondsOrZero,
    "client_name": str,
    "db": int,
    "username": str,
    "password": str,
    "ssl_ca_certs": str,
    "ssl_cert_reqs": Choice("required", "optional", "none"),
    "ssl_check_hostname": bool,
}


@dataclass(frozen=True)
class RedisOptions:
    """Validated adapter options with their defaults."""

    prefix: str = ""
    socket_timeout: float = 5.0
    socket_connect_timeout: float = 5.0
    max_connections: int = 50
    autopipeline: bool = True
    health_check_interval: float = 0.0
    client_name: str | None = None
    ssl_ca_certs: str | None = None
    ssl_cert_reqs: Literal["required", "optional", "none"] = "required"
    ssl_check_hostname: bool = True

    def __post_init__(self) -> None:
        # Times and ssl_cert_reqs are checked by coerce_options (their option kinds).
        if self.max_connections < 1:
            raise ConfigError(
                f"redis option max_connections must be >= 1, got {self.max_connections}"
            )
        name = self.client_name
        if name is not None and (not name or any(c.isspace() or not c.isprintable() for c in name)):
            # Redis refuses CLIENT SETNAME with spaces: every command would fail on connect.
            raise ConfigError(
                f"redis option client_name must be non-empty, without spaces or control "
                f"characters (Redis refuses it), got {name!r}"
            )


@dataclass(frozen=True, repr=False)
class Target:
    """Where to connect; ``password`` never appears in ``repr`` or ``shown``."""

    kind: Literal["tcp", "unix", "cluster"]
    hosts: tuple[tuple[str, int], ...] = ()
    path: str = ""
    db: int = 0
    ssl: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    shown: str = ""

    def __repr__(self) -> str:
        return f"Target({self.shown!r})"


def parse_target(url: str | None, given: dict[str, Any]) -> tuple[Target, RedisOptions]:
    """Turn a URL plus options into a :class:`Target` and :class:`RedisOptions`.

    Query options and keyword options are merged (keywords win); an unknown
    option, a bad value or a malformed URL raises :class:`ConfigError`.
    """
    parsed = parse_url(url if url is not None else DEFAULT_URL)
    if parsed.scheme not in SCHEMES:
        raise InvalidURL(
            f"not a redis URL: {parsed} (schemes: {', '.join(s + '://' for s in SCHEMES)})"
        )
    merged: dict[str, Any] = dict(parsed.query)
    merged.update(given)
    opts = coerce_options(merged, OPTIONS, adapter="redis")
    username = opts.pop("username", None)
    if username is None:
        username = parsed.username
    password = opts.pop("password", None)
    if password is None:
        password = parsed.password
    db_option = opts.pop("db", None)
    shown = parsed.render()  # redacted
    tls_options = sorted(k for k, v in opts.items() if k.startswith("ssl_") and v is not None)
    if tls_options and parsed.scheme != "rediss":
        raise ConfigError(
            f"redis option(s) {', '.join(tls_options)} need a rediss:// URL (TLS), "
            f"not {parsed.scheme}://; they would be ignored and the connection would not "
            "use TLS (Redis Cluster has no TLS support in this release)"
        )

    if parsed.scheme == "unix":
        if parsed.hosts or not parsed.path or parsed.path == "/":
            raise InvalidURL(
                f"unix socket URLs look like unix:///path/to/redis.sock?db=0, not {shown}"
            )
        target = Target(
            "unix", path=parsed.path, db=_db(db_option, 0, shown), username=username,
            password=password, shown=shown,
        )  # fmt: skip
    elif parsed.scheme == "redis+cluster":
        if not parsed.hosts:
            raise InvalidURL(
                f"cluster URLs look like redis+cluster://host:port,host:port, not {shown}"
            )
        check_mode(opts, cluster=True)
        path_db = _path_db(parsed, shown)
        if _db(db_option, path_db, shown) != 0:
            raise InvalidURL(f"Redis Cluster has only database 0: {shown}")
        target = Target(
            "cluster", hosts=_hosts(parsed, shown), username=username, password=password,
            shown=shown,
        )  # fmt: skip
    else:
        if len(parsed.hosts) != 1:
            raise InvalidURL(
                f"{parsed.scheme}:// takes exactly one host "
                f"(use redis+cluster:// for several): {shown}"
            )
        target = Target(
            "tcp", hosts=_hosts(parsed, shown), db=_db(db_option, _path_db(parsed, shown), shown),
            ssl=parsed.scheme == "rediss", username=username, password=password, shown=shown,
        )  # fmt: skip
    try:
        options = RedisOptions(**opts)
    except TypeError as err:  # pragma: no cover - OPTIONS and RedisOptions disagree
        raise ConfigError(str(err)) from None
    return target, options


def check_mode(given: Mapping[str, Any], *, cluster: bool) -> None:
    """Refuse options given explicitly that would do nothing for this kind of server.

    ``given`` holds the coerced options the caller passed (defaults excluded).
    """
    if cluster and given.get("autopipeline"):
        raise ConfigError(
            "redis option autopipeline=true does not apply to Redis Cluster: commands go "
            "through redis-py's cluster client (batches as one pipeline per node); drop it"
        )


def client_settings(target: Target, options: RedisOptions) -> dict[str, Any]:
    """redis-py keyword arguments of every client the adapter builds, async or blocking.

    The caller adds ``retry`` (redis-py's async and sync ``Retry`` differ; the
    adapter never retries silently: a retried script could apply twice, and a
    caller must learn within the timeout that the server is gone) and, for a
    standalone server, where to connect (:func:`pool_settings`).
    """
    settings: dict[str, Any] = {
        "username": target.username,
        "password": target.password,
        "socket_timeout": options.socket_timeout,
        "socket_connect_timeout": options.socket_connect_timeout,
        "health_check_interval": options.health_check_interval,
        "max_connections": options.max_connections,
        "client_name": options.client_name,
        "decode_responses": False,
        # RESP2 on every redis-py version (8.x defaults to RESP3): the same raw
        # replies everywhere, and no RESP3 maintenance notifications, which make
        # redis-py 8's pool skip its check for connections the server has closed.
        "protocol": 2,
    }
    if target.ssl:
        settings.update(
            ssl_ca_certs=options.ssl_ca_certs,
            ssl_cert_reqs=options.ssl_cert_reqs,
            ssl_check_hostname=options.ssl_check_hostname,
        )
    return settings


def pool_settings(
    target: Target, options: RedisOptions, *, unix: type[Any], ssl: type[Any]
) -> dict[str, Any]:
    """Keyword arguments of a connection pool for a standalone ``target``.

    :func:`client_settings` plus the database and where to connect; ``unix``
    and ``ssl`` are the connection classes of the redis-py flavour (async or
    sync) the pool is built with.
    """
    settings = client_settings(target, options)
    settings["db"] = target.db
    if target.kind == "unix":
        settings.update(connection_class=unix, path=target.path)
    else:
        host, port = target.hosts[0]
        settings.update(host=host, port=port)
        if target.ssl:
            settings["connection_class"] = ssl
    return settings


def _hosts(parsed: StorageURL, shown: str) -> tuple[tuple[str, int], ...]:
    out = []
    for host, port in parsed.hosts:
        if not host:
            raise InvalidURL(f"missing host in {shown}")
        out.append((host, DEFAULT_PORT if port is None else port))
    return tuple(out)


def _path_db(parsed: StorageURL, shown: str) -> int:
    text = parsed.path.strip("/")
    if not text:
        return 0
    if not text.isdigit():
        raise InvalidURL(
            f"the path of a redis URL is the database number (/0), not {text!r}: {shown}"
        )
    return int(text)


def _db(option: int | None, default: int, shown: str) -> int:
    if option is not None and default != 0 and option != default:
        raise ConfigError(
            f"the URL {shown} names database {default} and the db option says {option}: "
            "give the database once"
        )
    db = default if option is None else option
    if db < 0:
        raise InvalidURL(f"database number must be >= 0: {shown}")
    return db
