"""Built-in plugin: the codecs that ship with the core, registered like any plugin's."""

from __future__ import annotations

from typing import Any

from .codecs import BytesCodec, JsonCodec, TextCodec
from .hookspecs import hookimpl


@hookimpl
def botstate_register_codecs(register: Any) -> None:
    register(JsonCodec())
    register(BytesCodec())
    register(TextCodec())
