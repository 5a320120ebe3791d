"""botstate plugin: registers the ``kv`` adapter (imports nothing heavy, not boto3)."""

from __future__ import annotations

from typing import Any

from botstate.adapter import hookimpl


@hookimpl
def botstate_register_storage(register: Any) -> None:
    register(
        "kv",
        "botstate_storage_kv.adapter:DynamoDBAdapter.from_url",
        schemes=["dynamodb"],
        description="Amazon DynamoDB (or any DynamoDB-compatible endpoint) through boto3",
    )
