"""Built-in plugin: the codecs that ship with the core, registered like any plugin's."""

from __future__ import annotations

from typing import Any

from .codecs import BUILTIN_CODECS
from .hookspecs import hookimpl


@hookimpl
def botstate_register_codecs(register: Any) -> None:
    for codec in BUILTIN_CODECS.values():
        register(codec)
