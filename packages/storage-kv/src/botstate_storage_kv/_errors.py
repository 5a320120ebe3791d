"""Turning boto3/botocore errors into botstate errors, without leaking secrets."""

from __future__ import annotations

from collections.abc import Callable

from botocore import exceptions as bc  # type: ignore[import-untyped]

from botstate import BotstateError, ConfigError, StorageError, StorageUnavailable, ValueTooLarge

__all__ = ["DRIVER_ERRORS", "error_code", "translate"]

DRIVER_ERRORS: tuple[type[Exception], ...] = (bc.ClientError, bc.BotoCoreError)
"""Everything boto3 raises on a failed call; never let one reach the caller."""

# Error codes that mean "the service is busy or failing, try later". botocore
# already retried these (per retry_mode / max_attempts) before we see them.
_UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "TransactionConflictException",
    }
)
# The request was refused because of who made it: fix credentials or IAM policy.
_AUTH_CODES = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "MissingAuthenticationTokenException",
        "IncompleteSignatureException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
    }
)
_CONFIG_ERRORS = (
    bc.NoCredentialsError,
    bc.PartialCredentialsError,
    bc.ProfileNotFound,
    bc.NoRegionError,
    bc.ConfigParseError,
    bc.InvalidConfigError,
    bc.InvalidRegionError,
    bc.UnknownEndpointError,
    bc.EndpointProviderError,
    bc.InvalidRetryConfigurationError,
)
_UNAVAILABLE_ERRORS = (
    bc.ConnectionError,  # refused, connect timeout, DNS, TLS, proxy
    bc.HTTPClientError,  # read timeout, connection closed mid-request
    bc.CapacityNotAvailableError,  # the retry quota ran out
    bc.IncompleteReadError,
    bc.CredentialRetrievalError,
    bc.MetadataRetrievalError,
)


def error_code(err: BaseException) -> str:
    """The DynamoDB error code of a ``ClientError`` (``""`` for anything else)."""
    if isinstance(err, bc.ClientError):
        return str(err.response.get("Error", {}).get("Code", ""))
    return ""


def translate(
    err: Exception, action: str, table: str, redact: Callable[[str], str]
) -> BotstateError:
    """The botstate error for a failed boto3 call ``action`` on ``table``.

    ``redact`` hides the credentials in driver text (``botstate.adapter.redact_secrets``).
    """
    where = f"DynamoDB {action} on table {table!r}"
    if isinstance(err, bc.ClientError):
        code = error_code(err)
        message = redact(str(err.response.get("Error", {}).get("Message", "")))
        if code == "ResourceNotFoundException":
            return ConfigError(
                f"DynamoDB table {table!r} does not exist (or is not visible to these "
                f"credentials in this region); create it or open the storage with create=true"
            )
        if code in _UNAVAILABLE_CODES:
            return StorageUnavailable(f"{where} failed after retries ({code}): {message}")
        if code in _AUTH_CODES:
            return ConfigError(
                f"{where} was refused ({code}): {message}; check the credentials and the "
                f"IAM permissions listed in the botstate-storage-kv README"
            )
        if code == "ValidationException" and "size" in message.lower():
            return ValueTooLarge(f"{where} was rejected: {message}")
        return StorageError(f"{where} failed ({code or 'unknown error'}): {message}")
    text = redact(str(err))
    if isinstance(err, bc.NoRegionError):
        return ConfigError(f"{where}: no AWS region; pass region=... or set AWS_REGION")
    if isinstance(err, (bc.NoCredentialsError, bc.PartialCredentialsError)):
        return ConfigError(
            f"{where}: {text}; pass aws_access_key_id and aws_secret_access_key, a profile, "
            f"or configure boto3's standard credential chain (environment, shared files, role)"
        )
    if isinstance(err, _CONFIG_ERRORS):
        return ConfigError(f"{where} cannot be configured: {text}")
    if isinstance(err, _UNAVAILABLE_ERRORS):
        return StorageUnavailable(f"{where} failed: {text}")
    return StorageError(f"{where} failed: {type(err).__name__}: {text}")
