"""Options of the kv adapter: parsing, validation, and building the boto3 client."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botstate import ConfigError, InvalidURL
from botstate.adapter import Choice, OptionKind, Seconds, coerce_options, parse_url, redact_url

__all__ = ["OPTIONS", "KVConfig", "config_from_url"]

RETRY_MODES = ("standard", "adaptive")
OPTIONS: dict[str, OptionKind] = {
    "table": str,
    "region": str,
    "endpoint_url": str,
    "create": bool,
    "aws_access_key_id": str,
    "aws_secret_access_key": str,
    "aws_session_token": str,
    "profile": str,
    "max_pool_connections": int,
    "connect_timeout": Seconds,
    "read_timeout": Seconds,
    "max_attempts": int,
    "retry_mode": Choice(*RETRY_MODES),
    "consistent_read": bool,
}
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_TABLE_ARN = re.compile(r"^arn:[^:\s]+:dynamodb:[^:\s]*:[^:\s]*:table/[A-Za-z0-9_.-]{3,255}$")


@dataclass(frozen=True)
class KVConfig:
    """Validated settings; ``repr`` shows no secret.

    Build it with :func:`config_from_url` (as ``DynamoDBAdapter.from_url`` does):
    option types and the timeouts are checked there, by ``coerce_options``.
    """

    table: str
    region: str | None = None
    endpoint_url: str | None = None
    create: bool = False
    aws_access_key_id: str | None = field(default=None, repr=False)
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    profile: str | None = None
    max_pool_connections: int = 10
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    max_attempts: int = 3
    retry_mode: str = "standard"
    consistent_read: bool = True

    def __post_init__(self) -> None:
        if not (_TABLE_NAME.match(self.table) or _TABLE_ARN.match(self.table)):
            raise ConfigError(
                f"bad DynamoDB table name {self.table!r}: 3-255 characters of "
                f"a-z A-Z 0-9 _ - . (or a table ARN)"
            )
        if self.max_pool_connections < 1:
            raise ConfigError(f"max_pool_connections must be >= 1, got {self.max_pool_connections}")
        if self.max_attempts < 1:
            raise ConfigError(
                f"max_attempts must be >= 1 (1 = no retries), got {self.max_attempts}"
            )
        # connect_timeout and read_timeout are checked by coerce_options (Seconds).
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            raise ConfigError("give both aws_access_key_id and aws_secret_access_key, or neither")
        if self.aws_session_token is not None and self.aws_access_key_id is None:
            raise ConfigError("aws_session_token needs aws_access_key_id and aws_secret_access_key")
        if self.profile is not None and self.aws_access_key_id is not None:
            raise ConfigError("give either profile or explicit aws_* keys, not both")
        if self.endpoint_url is not None and "://" not in self.endpoint_url:
            raise ConfigError(
                f"endpoint_url must be a full URL like http://127.0.0.1:8000, "
                f"got {redact_url(self.endpoint_url)!r}"
            )

    @property
    def secrets(self) -> tuple[str, ...]:
        """The credential values to hide in messages and logs.

        Values under 4 characters (``"a"`` in a test config) are left alone:
        hiding them would mangle every message.
        """
        values = (self.aws_access_key_id, self.aws_secret_access_key, self.aws_session_token)
        return tuple(v for v in values if v and len(v) >= 4)

    @property
    def credentials_source(self) -> str:
        """Where credentials come from, for ``repr`` (never the credentials themselves)."""
        if self.aws_access_key_id is not None:
            return "explicit"
        if self.profile is not None:
            return f"profile {self.profile}"
        return "default chain"

    def build_client(self) -> Any:
        """A low-level boto3 DynamoDB client for these settings (blocking: call off the loop)."""
        import boto3  # type: ignore[import-untyped]
        from botocore.config import Config  # type: ignore[import-untyped]

        session = boto3.session.Session(
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            aws_session_token=self.aws_session_token,
            region_name=self.region,
            profile_name=self.profile,
        )
        config = Config(
            max_pool_connections=self.max_pool_connections,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            retries={"total_max_attempts": self.max_attempts, "mode": self.retry_mode},
            user_agent_extra="botstate-storage-kv",
        )
        try:
            return session.client("dynamodb", endpoint_url=self.endpoint_url, config=config)
        except ValueError as err:  # e.g. "Invalid endpoint: ..."
            raise ConfigError(f"cannot build a DynamoDB client: {redact_url(str(err))}") from None


def config_from_url(url: str | None, options: Mapping[str, Any]) -> KVConfig:
    """Merge ``dynamodb://table?opt=...`` and keyword options into a :class:`KVConfig`."""
    given: dict[str, Any] = {}
    if url is not None:
        parsed = parse_url(url)
        if parsed.username is not None or parsed.password is not None:
            # Not echoed: the user part would be an access key id.
            raise InvalidURL(
                "kv URLs take no user part: pass aws_access_key_id/aws_secret_access_key "
                "as options (or use the default credential chain)"
            )
        if (
            parsed.scheme != "dynamodb"
            or len(parsed.hosts) > 1
            or parsed.port is not None
            or parsed.path not in ("", "/")
        ):
            raise InvalidURL(f"kv URLs look like dynamodb://TABLE?region=eu-west-1, not {parsed}")
        if parsed.host:
            given["table"] = parsed.host
        given.update(parsed.query)
    for name, value in options.items():
        if name == "table" and "table" in given and value != given["table"]:
            raise ConfigError(f"table given twice: {given['table']!r} in the URL and {value!r}")
        given[name] = value
    coerced = coerce_options(given, OPTIONS, adapter="kv")
    if not coerced.get("table"):
        raise ConfigError("the kv adapter needs a table: dynamodb://TABLE?... or table=...")
    return KVConfig(**{k: v for k, v in coerced.items() if v is not None})
