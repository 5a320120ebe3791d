"""The plugin hooks of botstate (pluggy project name ``botstate``).

A plugin is a module or object named by an entry point in the group
``botstate.storage``; it implements one or both hooks with ``@hookimpl``::

    from botstate import hookimpl

    @hookimpl
    def botstate_register_storage(register):
        register("mystore", "mystore_pkg.adapter:MyAdapter.from_url",
                 schemes=["mystore"], description="My backend")
"""

from __future__ import annotations

from typing import Any

import pluggy

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("botstate")
hookimpl = pluggy.HookimplMarker("botstate")


@hookspec
def botstate_register_storage(register: Any) -> None:
    """Register adapters: ``register(name, factory, *, schemes=(), description="")``."""


@hookspec
def botstate_register_codecs(register: Any) -> None:
    """Register codecs: ``register(codec)``; a codec has ``name``, ``encode``, ``decode``."""
