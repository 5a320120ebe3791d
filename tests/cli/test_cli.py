"""The ``botstate`` command line, run as a subprocess against real storages.

SQLite files are created in ``tmp_path``; Redis and DynamoDB Local come from
the root conftest's session fixtures. Every test runs ``python -m botstate``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import botstate
import botstate.adapter
from tooling.services import free_port, missing, require_module

COMMANDS = ["adapters", "keys", "get", "set", "delete", "copy", "check"]
REDIS_DB = 9  # away from the db 0 the adapter tests use


def cli(
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    plain: bool = True,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "botstate", *args]
    if plain and args and args[0] in COMMANDS:
        argv.append("--plain")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BOTSTATE_")}
    full_env.update(env or {})
    return subprocess.run(
        argv, capture_output=True, text=True, env=full_env, input=stdin, timeout=timeout
    )


def need(adapter: str) -> None:
    """Skip the test locally (fail it under CI=true) unless ``adapter`` is installed and loads."""
    if not any(a.name == adapter and a.error is None for a in botstate.list_adapters()):
        missing(f"botstate-storage-{adapter} is not installed")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def put(url: str, items: Mapping[str, tuple[bytes, float | None]]) -> None:
    adapter = botstate.adapter.open_adapter(url)
    try:
        for key, (value, expires_at) in items.items():
            await adapter.set(key, value, expires_at=expires_at)
    finally:
        await adapter.close()


async def dump(url: str, prefix: str = "") -> dict[str, tuple[bytes, float | None]]:
    """Every live entry under ``prefix`` with its absolute expiry."""
    adapter = botstate.adapter.open_adapter(url)
    try:
        out = {}
        async for key in adapter.scan(prefix):
            value = await adapter.get(key)
            if value is not None:
                out[key] = (value, await adapter.get_expiry(key))
        return out
    finally:
        await adapter.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    need("sqlite")
    return f"sqlite:///{tmp_path / 'bot.db'}"


@pytest.fixture
def redis_url(redis_server: Any) -> str:
    need("redis")
    return f"redis://127.0.0.1:{redis_server.port}/{REDIS_DB}"


@pytest.fixture
def kv_url(dynamodb_local: Any) -> str:
    need("kv")
    return str(dynamodb_local.url(f"cli-{uuid.uuid4().hex[:12]}"))


@pytest.fixture
def tag() -> str:
    """A key prefix unique to the test, so shared servers need no flushing."""
    return f"t{uuid.uuid4().hex[:10]}:"


def dead_redis_url(password: str | None = None) -> str:
    auth = f":{password}@" if password else ""
    return f"redis://{auth}127.0.0.1:{free_port()}/0?socket_connect_timeout=0.5&socket_timeout=0.5"


# -- help, version, adapters ---------------------------------------------


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_command_has_help_with_exit_codes(command: str | None) -> None:
    result = cli(*([command] if command else []), "--help", plain=False)
    assert result.returncode == 0, result.stderr
    assert "exit codes:" in result.stdout
    assert "3  storage unavailable" in result.stdout


def test_version() -> None:
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"botstate {botstate.__version__}"


def test_no_command_is_a_usage_error() -> None:
    result = cli()
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_adapters_lists_memory_with_its_capabilities() -> None:
    result = cli("adapters")
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("memory "))
    assert "botstate-storage-memory" in line
    assert "memory://" in line
    assert "atomic, batch, expiry_events, scan" in line


def test_adapters_json() -> None:
    result = cli("adapters", "--json")
    assert result.returncode == 0, result.stderr
    by_name = {entry["name"]: entry for entry in json.loads(result.stdout)}
    memory = by_name["memory"]
    assert memory["distribution"] == "botstate-storage-memory"
    assert memory["schemes"] == ["memory"]
    assert set(memory["capabilities"]) == {"atomic", "batch", "expiry_events", "scan"}
    assert memory["error"] is None


def _fake_distribution(site: Path, name: str, entry_points: str) -> None:
    # Wheel naming: the project name with "_" (a "-" would end the name there).
    info = site / f"{name.replace('-', '_')}-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text(f"[botstate.storage]\n{entry_points}\n")


def test_broken_plugins_are_listed_not_a_crash(tmp_path: Path) -> None:
    site = tmp_path / "site"
    # One plugin that cannot even be imported ...
    _fake_distribution(site, "botstate-storage-ghost", "ghost = botstate_ghost_missing.plugin")
    # ... and one that registers fine but whose adapter module is missing.
    (site / "botstate_halfway.py").write_text(
        textwrap.dedent(
            """
            from botstate.adapter import hookimpl

            @hookimpl
            def botstate_register_storage(register):
                register("halfway", "botstate_halfway_gone.adapter:A.from_url",
                         schemes=["halfway"], description="adapter module is missing")
            """
        )
    )
    _fake_distribution(site, "botstate-storage-halfway", "halfway = botstate_halfway")
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}

    result = cli("adapters", env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[2:]}
    assert "ERROR: import failed: ModuleNotFoundError" in lines["ghost"]
    assert "botstate-storage-ghost" in lines["ghost"]
    assert "halfway://" in lines["halfway"]
    assert " ? " in lines["halfway"]  # capabilities unknown: the module cannot be imported
    assert "botstate_halfway_gone" in lines["halfway"]
    assert "scan" in lines["memory"]  # the others are unaffected
    assert "cannot load: ghost, halfway" in result.stderr

    as_json = {e["name"]: e for e in json.loads(cli("adapters", "--json", env=env).stdout)}
    assert as_json["halfway"]["capabilities"] is None
    assert as_json["ghost"]["error"]

    # Opening the broken adapter is an actionable configuration error, not a traceback.
    opened = cli("keys", "halfway://x", env=env)
    assert opened.returncode == 2
    assert "Traceback" not in opened.stderr
    assert "cannot import 'botstate_halfway_gone.adapter:A.from_url'" in opened.stderr


def test_an_adapter_without_scan_cannot_be_listed_or_copied(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "botstate_noscan.py").write_text(
        textwrap.dedent(
            """
            from botstate.adapter import BaseAdapter, hookimpl

            class NoScan(BaseAdapter):
                @classmethod
                def from_url(cls, url, **options):
                    return cls()

                async def get(self, key):
                    return None

            @hookimpl
            def botstate_register_storage(register):
                register("noscan", "botstate_noscan:NoScan.from_url", schemes=["noscan"])
            """
        )
    )
    _fake_distribution(site, "botstate-storage-noscan", "noscan = botstate_noscan")
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    listed = cli("keys", "noscan://", env=env)
    assert listed.returncode == 2
    assert "SCAN" in listed.stderr
    copied = cli("copy", "noscan://", "memory://", env=env)
    assert copied.returncode == 2
    assert "cannot list its keys" in copied.stderr
    assert "Traceback" not in listed.stderr + copied.stderr


# -- errors and redaction -------------------------------------------------


def test_unknown_scheme_is_a_config_error() -> None:
    result = cli("keys", "nosuch://somewhere")
    assert result.returncode == 2
    assert "botstate: error: no installed adapter serves URL scheme 'nosuch'" in result.stderr
    assert "Traceback" not in result.stderr


def test_adapter_not_installed_names_the_distribution() -> None:
    # BOTSTATE_PLUGINS hides every plugin but memory, as if redis were not installed.
    result = cli("get", "redis://127.0.0.1:1/0", "k", env={"BOTSTATE_PLUGINS": "memory"})
    assert result.returncode == 2
    assert "pip install botstate-storage-redis" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("url", ["not a url", "memory://?max_entries=lots", "memory://?bogus=1"])
def test_bad_urls_and_options_exit_2(url: str) -> None:
    result = cli("keys", url)
    assert result.returncode == 2, result.stderr
    assert "botstate: error:" in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2_without_echoing_passwords() -> None:
    secret = "Sup3r-s3cret-pw"
    result = cli("keys", "memory://", f"redis://:{secret}@127.0.0.1:6379/0")
    assert result.returncode == 2
    assert "unrecognized arguments" in result.stderr
    assert secret not in result.stderr + result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("get", "{url}", "k"),
        ("keys", "{url}"),
        ("set", "{url}", "k", "1"),
        ("check", "{url}"),
    ],
)
def test_unreachable_redis_exits_3_and_hides_the_password(args: tuple[str, ...]) -> None:
    need("redis")
    secret = "Sup3r-s3cret-pw"
    url = dead_redis_url(secret)
    result = cli(*(a.format(url=url) for a in args), "--timeout", "5")
    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    assert "botstate: error:" in result.stderr
    assert secret not in output
    assert "Traceback" not in output


# -- keys / get / set / delete --------------------------------------------


def test_set_get_keys_delete_round_trip(sqlite_url: str) -> None:
    assert cli("set", sqlite_url, "user:1", '{"name": "Ann", "tags": ["a", "é"]}').returncode == 0
    assert cli("set", sqlite_url, "user:2", "42").returncode == 0
    assert cli("set", sqlite_url, "chat:1", "hello", "--raw").returncode == 0

    got = cli("get", sqlite_url, "user:1")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == {"name": "Ann", "tags": ["a", "é"]}
    assert got.stdout.startswith("{\n  ")  # pretty-printed

    # Stored like Storage's json codec stores it, so applications can read it.
    storage = botstate.open_storage(sqlite_url)
    assert run(_get_close(storage, "user:1")) == {"name": "Ann", "tags": ["a", "é"]}

    raw = cli("get", sqlite_url, "chat:1")
    assert raw.returncode == 0
    assert raw.stdout == "hello\n"
    assert "not JSON" in raw.stderr

    listed = cli("keys", sqlite_url)
    assert listed.returncode == 0
    assert sorted(listed.stdout.split()) == ["chat:1", "user:1", "user:2"]
    assert sorted(cli("keys", sqlite_url, "--prefix", "user:").stdout.split()) == [
        "user:1",
        "user:2",
    ]

    assert cli("delete", sqlite_url, "user:2").returncode == 0
    missing = cli("get", sqlite_url, "user:2")
    assert missing.returncode == 1
    assert "key 'user:2' not found" in missing.stderr
    again = cli("delete", sqlite_url, "user:2")
    assert again.returncode == 1
    assert "nothing deleted" in again.stderr


async def _get_close(storage: botstate.Storage[Any], key: str) -> Any:
    async with storage:
        return await storage.get(key)


def test_namespace_option(sqlite_url: str) -> None:
    assert cli("set", sqlite_url, "k", '"in ns"', "--namespace", "bot1").returncode == 0
    assert cli("keys", sqlite_url).stdout.split() == ["bot1:k"]
    assert cli("keys", sqlite_url, "-n", "bot1").stdout.split() == ["k"]
    assert json.loads(cli("get", sqlite_url, "k", "-n", "bot1").stdout) == "in ns"
    assert cli("get", sqlite_url, "k", "-n", "bot2").returncode == 1
    bad = cli("keys", sqlite_url, "-n", "a:b")
    assert bad.returncode == 2
    assert "namespace" in bad.stderr


def test_binary_values_are_shown_safely_and_raw_gives_the_bytes(sqlite_url: str) -> None:
    blob = b"\x00\xff\x1b[31mred\n"
    run(put(sqlite_url, {"blob": (blob, None)}))
    shown = cli("get", sqlite_url, "blob")
    assert shown.returncode == 0
    assert shown.stdout.strip() == repr(blob)
    assert "\x1b" not in shown.stdout  # no terminal escape reaches the screen
    assert "bytes literal" in shown.stderr
    raw = subprocess.run(
        [sys.executable, "-m", "botstate", "get", sqlite_url, "blob", "--raw"],
        capture_output=True,
        timeout=60,
    )
    assert raw.returncode == 0
    assert raw.stdout == blob


def test_set_with_ttl_and_stdin(sqlite_url: str) -> None:
    assert (
        cli("set", sqlite_url, "k", "-", "--ttl", "120", stdin='{"from": "stdin"}').returncode == 0
    )
    got = cli("get", sqlite_url, "k", "--ttl")
    assert json.loads(got.stdout) == {"from": "stdin"}
    remaining = float(got.stderr.split("ttl: ")[1].rstrip("s\n"))
    assert 110 < remaining <= 120
    assert cli("set", sqlite_url, "short", "1", "--ttl", "1").returncode == 0
    time.sleep(1.2)
    assert cli("get", sqlite_url, "short").returncode == 1
    assert (
        "never expires"
        in cli("set", sqlite_url, "p", "1").stderr + cli("get", sqlite_url, "p", "--ttl").stderr
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("k", "not json"), "not valid JSON"),
        (("k", "1", "--ttl", "-5"), "--ttl must be positive"),
        (("k", "1", "--ttl", "soon"), "invalid float value"),
        (("k", "1", "--ttl", "inf"), "--ttl must be at most"),
        (("k", "1", "--ttl", "nan"), "--ttl must be positive seconds, got nan"),
        (("", "1"), "key must not be empty"),
    ],
)
def test_set_rejects_bad_input_with_exit_2(
    sqlite_url: str, args: tuple[str, ...], message: str
) -> None:
    result = cli("set", sqlite_url, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert cli("keys", sqlite_url).stdout.split() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("keys", "memory://", "--timeout", "-1"), "--timeout must be >= 0 seconds, got -1.0"),
        (("keys", "memory://", "--timeout", "nan"), "--timeout must be >= 0 seconds, got nan"),
        (("keys", "memory://", "--timeout", "inf"), "--timeout must be at most"),
        (("keys", "memory://", "--timeout", "1m"), "--timeout: invalid float value: '1m'"),
        (("copy", "memory://", "memory://?x", "--max-errors", "-3"), "--max-errors must be a"),
        (("copy", "memory://", "memory://?x", "--batch", "0"), "--batch must be a whole number"),
        (("copy", "memory://", "memory://?x", "--batch", "2.5"), "--batch: invalid int value"),
    ],
)
def test_bad_numeric_options_exit_2_before_anything_runs(
    args: tuple[str, ...], message: str
) -> None:
    result = cli(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "usage:" in result.stderr
    assert "Traceback" not in result.stderr


def test_timeout_0_means_no_limit() -> None:
    result = cli("keys", "memory://", "--timeout", "0")
    assert result.returncode == 0, result.stderr


# -- copy -----------------------------------------------------------------


def _source_entries(tag: str, now: float) -> dict[str, tuple[bytes, float | None]]:
    entries: dict[str, tuple[bytes, float | None]] = {}
    for i in range(120):  # several batches with --batch 50
        expires = None if i % 3 == 0 else now + 300 + i  # many distinct expiries
        entries[f"{tag}user:{i}"] = (json.dumps({"n": i}).encode(), expires)
    entries[f"{tag}chat:bin"] = (bytes(range(256)), None)  # not JSON: copied byte for byte
    entries[f"{tag}chat:text"] = (b"plain text", now + 1000)
    return entries


def _assert_copied(
    got: Mapping[str, tuple[bytes, float | None]],
    want: Mapping[str, tuple[bytes, float | None]],
) -> None:
    assert set(got) == set(want)
    for key, (value, expires) in want.items():
        assert got[key][0] == value, key
        if expires is None:
            assert got[key][1] is None, key
        else:
            # Backends store expiry at ms (Redis) or second (DynamoDB) precision.
            assert got[key][1] is not None, key
            assert abs(got[key][1] - expires) < 1.5, key


def test_copy_sqlite_to_redis_keeps_values_and_ttls(
    sqlite_url: str, redis_url: str, tag: str
) -> None:
    now = time.time()
    entries = _source_entries(tag, now)
    run(put(sqlite_url, {**entries, f"{tag}gone": (b"x", now + 0.3)}))
    time.sleep(0.5)  # "gone" has expired in the source: it must not be copied

    result = cli("copy", sqlite_url, redis_url, "--batch", "50")
    assert result.returncode == 0, result.stderr
    assert f"copied {len(entries)} keys from" in result.stdout
    assert "0 failed" in result.stdout
    assert f"copying: {len(entries)} keys (" in result.stderr  # the plain progress line
    _assert_copied(run(dump(redis_url, tag)), entries)

    # Re-running overwrites and changes nothing; a changed destination is set back.
    run(put(redis_url, {f"{tag}user:0": (b"tampered", None)}))
    again = cli("copy", sqlite_url, redis_url, "--batch", "7")
    assert again.returncode == 0, again.stderr
    assert f"copied {len(entries)} keys" in again.stdout
    _assert_copied(run(dump(redis_url, tag)), entries)


def test_copy_dry_run_writes_nothing(sqlite_url: str, redis_url: str, tag: str) -> None:
    entries = _source_entries(tag, time.time())
    run(put(sqlite_url, entries))
    result = cli("copy", sqlite_url, redis_url, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert f"would copy {len(entries)} keys" in result.stdout
    assert run(dump(redis_url, tag)) == {}


def test_copy_prefix_copies_only_matching_keys(sqlite_url: str, redis_url: str, tag: str) -> None:
    entries = _source_entries(tag, time.time())
    run(put(sqlite_url, entries))
    result = cli("copy", sqlite_url, redis_url, "--prefix", f"{tag}chat:")
    assert result.returncode == 0, result.stderr
    assert "copied 2 keys" in result.stdout
    want = {k: v for k, v in entries.items() if k.startswith(f"{tag}chat:")}
    _assert_copied(run(dump(redis_url, tag)), want)


def test_copy_redis_back_to_a_new_sqlite_file(redis_url: str, sqlite_url: str, tag: str) -> None:
    entries = _source_entries(tag, time.time())
    run(put(redis_url, entries))
    target = sqlite_url  # a file that does not exist yet
    result = cli("copy", redis_url, target, "--prefix", tag)
    assert result.returncode == 0, result.stderr
    _assert_copied(run(dump(target)), entries)


def test_copy_to_an_unreachable_destination_reports_and_fails(sqlite_url: str, tag: str) -> None:
    need("redis")
    secret = "Sup3r-s3cret-pw"
    run(put(sqlite_url, _source_entries(tag, time.time())))
    started = time.monotonic()
    result = cli("copy", sqlite_url, dead_redis_url(secret), "--batch", "50", "--max-errors", "60")
    assert time.monotonic() - started < 40
    assert result.returncode == 3, result.stdout + result.stderr
    assert "copied 0 keys" in result.stdout
    assert "StorageUnavailable" in result.stderr
    assert f"key '{tag}" in result.stderr
    assert "stopped after" in result.stderr  # --max-errors cut it short
    assert "run the same command again" in result.stderr
    assert "Traceback" not in result.stderr
    # The destination is named in the summary, its password hidden there and in every error.
    assert "to redis://:***@127.0.0.1:" in result.stdout
    assert secret not in result.stdout + result.stderr


def test_copy_says_keys_were_not_tried_only_when_some_remained(sqlite_url: str) -> None:
    need("redis")
    run(put(sqlite_url, {f"k{i}": (b"v", None) for i in range(3)}))
    # All three fail in the first and only batch: the limit is reached with no key left.
    finished = cli("copy", sqlite_url, dead_redis_url(), "--max-errors", "1")
    assert finished.returncode == 3, finished.stdout + finished.stderr
    assert "3 failed" in finished.stdout
    assert "not tried" not in finished.stderr
    assert "stopped after" not in finished.stderr
    # One key per batch: the first failure stops the copy with two keys never tried.
    stopped = cli("copy", sqlite_url, dead_redis_url(), "--batch", "1", "--max-errors", "1")
    assert stopped.returncode == 3, stopped.stdout + stopped.stderr
    assert "1 failed" in stopped.stdout
    assert "stopped after 1 failed keys (--max-errors 1)" in stopped.stderr
    assert "not tried" in stopped.stderr


def test_copy_same_storage_and_bad_batch_are_usage_errors(sqlite_url: str) -> None:
    same = cli("copy", sqlite_url, sqlite_url)
    assert same.returncode == 2
    assert "same storage" in same.stderr
    assert cli("copy", sqlite_url, "memory://", "--batch", "0").returncode == 2


def test_copy_to_a_storage_that_vanishes_with_the_command_is_refused(sqlite_url: str) -> None:
    assert cli("set", sqlite_url, "k", "1").returncode == 0
    copied = cli("copy", sqlite_url, "memory://")
    assert copied.returncode == 2
    assert "would vanish when the command exits" in copied.stderr
    assert "copied" not in copied.stdout


def test_copy_sqlite_to_dynamodb_keeps_values_and_ttls(
    sqlite_url: str, kv_url: str, tag: str
) -> None:
    entries = _source_entries(tag, time.time())
    # DynamoDB refuses items over 400 KB: that key fails, the others are copied.
    huge_key = f"{tag}huge"
    run(put(sqlite_url, {**entries, huge_key: (b"x" * 500_000, None)}))
    result = cli("copy", sqlite_url, kv_url, "--batch", "40")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"copied {len(entries)} keys" in result.stdout
    assert "1 failed" in result.stdout
    assert f"key '{huge_key}': ValueTooLarge" in result.stderr
    _assert_copied(run(dump(kv_url, tag)), entries)


# -- check ----------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["sqlite_url", "redis_url", "kv_url"])
def test_check_a_healthy_storage(fixture: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue(fixture)
    result = cli("check", url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "status:       ok" in result.stdout
    assert "capabilities: " in result.stdout
    assert "latency:      set" in result.stdout
    name = {"sqlite_url": "sqlite", "redis_url": "redis", "kv_url": "kv"}[fixture]
    assert f"adapter:      {name} (" in result.stdout
    # The scratch key is gone.
    assert not [k for k in run(dump(url)) if k.startswith("botstate-check:")]


def test_check_sqlite_in_memory() -> None:
    # Not a host:port URL: the adapter is found by its scheme alone.
    need("sqlite")
    result = cli("check", "sqlite://:memory:")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "adapter:      sqlite (" in result.stdout
    assert "status:       ok" in result.stdout


# An adapter that behaves as its URL says (probe://ok, mismatch, down, bad-repr)
# and logs every close() to the file named by PROBE_LOG.
PROBE = """
import os
from botstate import StorageUnavailable
from botstate.adapter import BaseAdapter, hookimpl

class Probe(BaseAdapter):
    def __init__(self, mode):
        super().__init__()
        self.mode = mode
        self.data = {}

    @classmethod
    def from_url(cls, url, **options):
        return cls(url.partition("://")[2])

    def __repr__(self):
        if self.mode == "bad-repr":
            raise RuntimeError("repr broke")
        return "Probe()"

    async def get(self, key):
        value = self.data.get(key)
        return b"something else" if value is not None and self.mode == "mismatch" else value

    async def set(self, key, value, *, expires_at=None):
        if self.mode == "down":
            raise StorageUnavailable("probe is down")
        self.data[key] = value

    async def delete(self, key):
        return self.data.pop(key, None) is not None

    async def close(self):
        with open(os.environ["PROBE_LOG"], "a") as log:
            log.write(self.mode + "\\n")
        await super().close()

@hookimpl
def botstate_register_storage(register):
    register("probe", "botstate_probe:Probe.from_url", schemes=["probe"])
"""


def test_check_closes_the_adapter_whatever_the_outcome(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "botstate_probe.py").write_text(PROBE)
    _fake_distribution(site, "botstate-storage-probe", "probe = botstate_probe")
    log = tmp_path / "closed.log"
    env = {
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        "PROBE_LOG": str(log),
    }
    outcomes = {"ok": 0, "mismatch": 1, "down": 3, "bad-repr": 1}
    for mode, code in outcomes.items():
        result = cli("check", f"probe://{mode}", env=env)
        assert result.returncode == code, (mode, result.stdout + result.stderr)
    assert log.read_text().split() == list(outcomes)


def test_check_memory() -> None:
    result = cli("check", "memory://")
    assert result.returncode == 0
    assert "atomic, batch, expiry_events, scan" in result.stdout


def test_check_an_unreachable_storage_exits_3() -> None:
    need("redis")
    result = cli("check", dead_redis_url("pw-hidden-123"))
    assert result.returncode == 3
    assert "status:       FAILED" in result.stdout
    assert "pw-hidden-123" not in result.stdout + result.stderr
    assert ":***@" in result.stdout


# -- rich output ------------------------------------------------------------

AS_TERMINAL = {"TTY_COMPATIBLE": "1", "COLUMNS": "200"}


def test_rich_output_works() -> None:
    require_module("rich", "rich")  # the hatch env installs it
    listed = cli("adapters", plain=False, env=AS_TERMINAL)
    assert listed.returncode == 0, listed.stderr
    assert "memory" in listed.stdout
    assert "botstate-storage-memory" in listed.stdout
    assert "┏━" in listed.stdout  # a rich table, not the plain one
    piped = cli("adapters", plain=False)  # not a terminal: plain, whatever is installed
    assert piped.stdout.startswith("NAME ")


def test_rich_copy_progress(sqlite_url: str, tmp_path: Path) -> None:
    require_module("rich", "rich")
    src = sqlite_url
    dst = f"sqlite:///{tmp_path / 'b.db'}"
    run(put(src, {f"k{i}": (b"v", None) for i in range(30)}))
    copied = cli("copy", src, dst, "--batch", "7", plain=False, env=AS_TERMINAL)
    assert copied.returncode == 0, copied.stderr
    assert "copied 30 keys" in copied.stdout
    assert "30 keys" in copied.stderr  # the progress display
    assert len(run(dump(dst))) == 30
