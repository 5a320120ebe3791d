"""botstate plugin: registers the ``example`` adapter.

Keep this module light. botstate imports it at discovery time, so it must not
import the adapter module or its driver; the factory is a dotted path that
botstate imports only when someone opens this adapter.
"""

from __future__ import annotations

from typing import Any

from botstate.adapter import hookimpl


@hookimpl
def botstate_register_storage(register: Any) -> None:
    register(
        "example",
        "botstate_storage_example.adapter:ExampleAdapter.from_url",
        schemes=["example"],
        description="Example adapter: one file per key in a local directory (persistent)",
    )
