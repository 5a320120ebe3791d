"""Import cost: ``import botstate``, ``open_storage("memory://")`` and each adapter module.

Each measurement runs in a fresh interpreter (after one warm-up run that fills
the bytecode cache) and times the import inside the child with
``time.perf_counter``, so interpreter start-up is not counted; the median of
the runs is recorded; the cases run interleaved, round by round, so a busy
machine slows them alike. The target (issue 14) is ``import botstate`` +
``open_storage("memory://")`` in < 35 ms, with no backend driver imported until
an adapter is used; the child reports which driver modules ``import botstate``
pulled in (must be none), and whether import and open loaded asyncio (must not:
they need no event loop, and asyncio alone costs more than the rest).

The target is in milliseconds of the machine it was set on (0.1.0 took 47 ms
there); ``import asyncio``, measured in the same rounds, is the yardstick of
this machine's speed, so the ratio to it can be compared across machines. A
bot using botstate is an asyncio program: the last line times import and open
with asyncio already loaded, botstate's own share.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
from typing import Any

from . import Bench

TARGET_MS = 35.0  # issue 14
# Modules that must only arrive when their adapter is opened (or the CLI is run).
DRIVERS = ("redis", "hiredis", "aiosqlite", "boto3", "botocore", "rich", "botstate.cli")

_CORE = """
import sys, time, json
{preload}
drivers = {drivers!r}
def loaded():
    return sorted(
        m for m in sys.modules
        if m in drivers or m.split(".")[0] in drivers
        or (m.startswith("botstate_storage_") and m.endswith(".adapter"))
    )
t0 = time.perf_counter()
import botstate
t1 = time.perf_counter()
after_import = loaded()
t2 = time.perf_counter()
storage = botstate.open_storage("memory://")
t3 = time.perf_counter()
print(json.dumps({{"import": t1 - t0, "memory": (t1 - t0) + (t3 - t2),
                  "after_import": after_import, "after_open": loaded(),
                  "asyncio": "asyncio" in sys.modules}}))
"""

_FLOOR = """
import json, time
t0 = time.perf_counter()
import asyncio
print(json.dumps({"import": time.perf_counter() - t0}))
"""

_ADAPTER = """
import importlib, json, time
import botstate
t0 = time.perf_counter()
importlib.import_module({module!r})
print(json.dumps({{"import": time.perf_counter() - t0}}))
"""


async def _child(code: str) -> dict[str, Any]:
    # Installed packages are imported from bytecode; with PYTHONDONTWRITEBYTECODE
    # set (as on some CI machines) the warm-up would cache nothing and every run
    # would time compiling the sources instead.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}): {err.decode()[-500:]}")
    return json.loads(out.decode().strip().splitlines()[-1])  # type: ignore[no-any-return]


async def _runs(code: str, runs: int) -> list[dict[str, Any]]:
    await _child(code)  # warm-up: bytecode cache
    return [await _child(code) for _ in range(runs)]


async def _interleaved(codes: list[str], runs: int) -> list[list[dict[str, Any]]]:
    """Run each code ``runs`` times, one of each per round."""
    for code in codes:
        await _child(code)  # warm-up: bytecode cache
    results: list[list[dict[str, Any]]] = [[] for _ in codes]
    for _ in range(runs):
        for out, code in zip(results, codes, strict=True):
            out.append(await _child(code))
    return results


def _median_ms(results: list[dict[str, Any]], field: str = "import") -> float:
    return float(statistics.median(r[field] for r in results)) * 1000


def _best_ms(results: list[dict[str, Any]], field: str = "import") -> float:
    return float(min(r[field] for r in results)) * 1000


def _adapter_modules() -> dict[str, str]:
    import botstate

    modules = {}
    for info in botstate.list_adapters():
        if info.error is None and isinstance(info.factory, str):
            modules[info.name] = info.factory.partition(":")[0]
    return modules


async def run(bench: Bench) -> None:
    runs = bench.round_count()
    floor, results, warm = await _interleaved(
        [
            _FLOOR,
            _CORE.format(drivers=DRIVERS, preload=""),
            # A bot using botstate is an asyncio program: asyncio is loaded
            # whatever storage it uses. This is the time botstate itself adds.
            _CORE.format(drivers=DRIVERS, preload="import asyncio"),
        ],
        runs,
    )
    floor_ms, warm_ms = _median_ms(floor), _median_ms(warm, "memory")
    import_ms, memory_ms, last = _median_ms(results), _median_ms(results, "memory"), results[-1]
    leaked = last["after_import"]
    verdict = "ok" if memory_ms < TARGET_MS else "ABOVE TARGET"
    # Measured without asyncio preloaded: a run that loaded it counts as a failure.
    asyncio_loaded = any(r["asyncio"] for r in results)
    # The best run shows the cost without scheduler noise from a busy machine.
    print(
        f"import   import asyncio (this machine's yardstick){'':<5} {floor_ms:8.1f} ms  "
        f"median of {runs} (best {_best_ms(floor):.1f} ms)"
    )
    print(
        f"import   import botstate{'':<31} {import_ms:8.1f} ms  median of {runs} "
        f"(best {_best_ms(results):.1f} ms)"
    )
    print(
        f"import   import botstate + open_storage('memory://') {memory_ms:8.1f} ms  "
        f"target < {TARGET_MS:g} ms  {verdict} (best {_best_ms(results, 'memory'):.1f} ms, "
        f"{memory_ms / floor_ms:.2f}x import asyncio)"
    )
    print(
        f"import   the same with asyncio already imported       {warm_ms:8.1f} ms  "
        f"botstate's own share (best {_best_ms(warm, 'memory'):.1f} ms, "
        f"{warm_ms / floor_ms:.2f}x import asyncio)"
    )
    print(
        "import   driver modules imported by `import botstate`: "
        + (", ".join(leaked) if leaked else "none")
    )
    print(
        "import   asyncio imported by `import botstate` + open_storage('memory://'): "
        + ("YES (must not be)" if asyncio_loaded else "no")
    )
    # Opening memory:// must load its own adapter module and nothing heavier.
    extra = [m for m in last["after_open"] if m != "botstate_storage_memory.adapter"]
    if extra:
        print(f"import   driver modules loaded by open_storage('memory://'): {', '.join(extra)}")
        bench.record("driver modules loaded by open_storage('memory://')", extra)
    bench.record("import asyncio, this machine's yardstick (ms, median)", round(floor_ms, 2))
    bench.record("import botstate (ms, median)", round(import_ms, 2))
    bench.record(
        "import botstate + open_storage('memory://') (ms, median)",
        f"{memory_ms:.2f} (target < {TARGET_MS:g} ms: {verdict}; "
        f"{memory_ms / floor_ms:.2f}x import asyncio)",
    )
    bench.record(
        "import botstate + open_storage('memory://'), asyncio already imported (ms, median)",
        f"{warm_ms:.2f} ({warm_ms / floor_ms:.2f}x import asyncio)",
    )
    bench.record("driver modules imported by `import botstate`", leaked or "none")
    bench.record(
        "asyncio imported by `import botstate` + open_storage('memory://')",
        "YES (must not be)" if asyncio_loaded else "no",
    )
    for module in sorted(_adapter_modules().values()):
        try:
            ms = _median_ms(await _runs(_ADAPTER.format(module=module), runs))
        except RuntimeError as err:
            print(f"import   {module}: FAILED {err}")
            bench.record(f"import {module} after botstate (ms, median)", f"failed: {err}")
            continue
        print(f"import   {module} (after botstate){'':<{max(0, 28 - len(module))}} {ms:8.1f} ms")
        bench.record(f"import {module} after botstate (ms, median)", round(ms, 2))
