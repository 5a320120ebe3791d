"""Install the built wheels into fresh virtual environments, as a user would.

The editable workspace env hides packaging mistakes (a missing entry point, a
file left out of the wheel, an import of a driver at discovery time). These
tests build each distribution once per session, install the wheels into new
venvs under ``tmp_path`` and run small scripts there. Nothing is written into
the checkout; only pluggy, pytest and pytest-asyncio come from the package
index (the installer caches them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from importlib.metadata import version
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
UV = shutil.which("uv")
SOURCES = {
    "botstate": ROOT / "packages" / "core",
    "botstate-storage-memory": ROOT / "packages" / "storage-memory",
    "botstate-storage-example": ROOT / "tooling" / "template",
}
DRIVERS = ("redis", "hiredis", "aiosqlite", "sqlite3", "boto3", "botocore", "aioboto3")


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc.stdout


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment a user's script would see: no workspace or botstate overrides."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BOTSTATE_") and k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each distribution built once, as a wheel, outside the checkout."""
    out = tmp_path_factory.mktemp("wheels")
    built: dict[str, Path] = {}
    for name, source in SOURCES.items():
        dest = out / name
        if UV:
            cmd = [UV, "build", "--quiet", "--wheel", "--out-dir", str(dest), str(source)]
        else:
            cmd = [sys.executable, "-m", "build", "--wheel", "--outdir", str(dest), str(source)]
        _run(cmd, cwd=out)
        (built[name],) = dest.glob("*.whl")
    return built


def make_venv(where: Path, *requirements: str | Path) -> Path:
    """Create a venv at ``where`` with ``requirements`` installed; return its python."""
    if UV:
        _run([UV, "venv", "--quiet", "--python", sys.executable, str(where)], cwd=where.parent)
    else:
        _run([sys.executable, "-m", "venv", str(where)], cwd=where.parent)
    python = where / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    reqs = [str(r) for r in requirements] + [f"pluggy=={version('pluggy')}"]
    if UV:
        _run([UV, "pip", "install", "--quiet", "--python", str(python), *reqs], cwd=where.parent)
    else:
        _run([str(python), "-m", "pip", "install", "--quiet", *reqs], cwd=where.parent)
    return python


def run_script(python: Path | str, code: str, cwd: Path, **env: str) -> str:
    """Run ``code`` with ``python`` outside the checkout; return its stdout."""
    return _run([str(python), "-c", textwrap.dedent(code)], cwd=cwd, env=_clean_env(**env))


def test_core_and_memory_wheels_work(tmp_path: Path, wheels: dict[str, Path]) -> None:
    python = make_venv(tmp_path / "venv", wheels["botstate"], wheels["botstate-storage-memory"])
    out = run_script(
        python,
        """
        import asyncio, botstate

        async def main():
            storage = botstate.open_storage("memory://", namespace="bot", ttl=60)
            await storage.set("chat:1", {"step": "ask_name"})
            assert await storage.get("chat:1") == {"step": "ask_name"}
            await storage.close()
            print("OK", botstate.__file__)

        asyncio.run(main())
        """,
        tmp_path,
    )
    assert out.startswith("OK ")
    assert str(tmp_path / "venv") in out  # the installed wheel, not the workspace source


def test_core_alone_names_the_memory_distribution(tmp_path: Path, wheels: dict[str, Path]) -> None:
    python = make_venv(tmp_path / "venv", wheels["botstate"])
    out = run_script(
        python,
        """
        import botstate

        for spec in ("memory://", {"adapter": "memory"}):
            try:
                botstate.open_storage(spec)
            except botstate.AdapterNotFound as err:
                print("NOTFOUND", err)
        print("ADAPTERS", [a.name for a in botstate.list_adapters()])
        """,
        tmp_path,
    )
    lines = out.splitlines()
    assert len([line for line in lines if line.startswith("NOTFOUND")]) == 2
    assert all("pip install botstate-storage-memory" in line for line in lines[:2])
    assert lines[2] == "ADAPTERS []"


def test_import_and_discovery_import_no_driver(tmp_path: Path) -> None:
    # The workspace env has every adapter and driver installed: the strongest case.
    out = run_script(
        sys.executable,
        f"""
        import json, sys
        import botstate

        names = [a.name for a in botstate.list_adapters()]
        botstate.open_storage("memory://")
        loaded = sorted(m for m in {DRIVERS!r} if m in sys.modules)
        print(json.dumps({{"adapters": names, "drivers": loaded}}))
        """,
        tmp_path,
    )
    result = json.loads(out)
    assert "memory" in result["adapters"]
    assert result["drivers"] == []


BROKEN_PYPROJECT = """
[build-system]
requires = ["hatchling>=1.21"]
build-backend = "hatchling.build"

[project]
name = "botstate-storage-broken"
version = "0.0.1"

[project.entry-points."botstate.storage"]
broken = "botstate_storage_broken"

[tool.hatch.build.targets.wheel]
packages = ["botstate_storage_broken"]
"""


def test_broken_plugin_is_reported_and_isolated(tmp_path: Path, wheels: dict[str, Path]) -> None:
    dist = tmp_path / "broken-dist"
    (dist / "botstate_storage_broken").mkdir(parents=True)
    (dist / "pyproject.toml").write_text(BROKEN_PYPROJECT)
    (dist / "botstate_storage_broken" / "__init__.py").write_text(
        'raise RuntimeError("boom: this plugin cannot be imported")\n'
    )
    python = make_venv(
        tmp_path / "venv", wheels["botstate"], wheels["botstate-storage-memory"], dist
    )
    script = """
        import asyncio, json, botstate

        async def main():
            storage = botstate.open_storage("memory://")
            await storage.set("k", 1)
            assert await storage.get("k") == 1

        asyncio.run(main())
        try:
            botstate.open_storage({"adapter": "broken"})
        except botstate.ConfigError as err:
            opened = f"{type(err).__name__}: {err}"
        print(json.dumps({
            "adapters": [
                [a.name, a.distribution, a.version, a.error] for a in botstate.list_adapters()
            ],
            "opened": opened,
        }))
        """
    result = json.loads(run_script(python, script, tmp_path))
    by_name = {row[0]: row for row in result["adapters"]}
    assert by_name["memory"][3] is None
    _, distribution, dist_version, error = by_name["broken"]
    assert (distribution, dist_version) == ("botstate-storage-broken", "0.0.1")
    assert "RuntimeError" in error
    assert "boom" in error
    assert result["opened"].startswith("PluginError: ")
    assert "boom" in result["opened"]

    allowed = json.loads(run_script(python, script, tmp_path, BOTSTATE_PLUGINS="memory"))
    assert [row[0] for row in allowed["adapters"]] == ["memory"]
    assert allowed["opened"].startswith("AdapterNotFound: ")
    assert "BOTSTATE_PLUGINS" in allowed["opened"]


def test_template_adapter_installs_and_passes_its_suite(
    tmp_path: Path, wheels: dict[str, Path]
) -> None:
    python = make_venv(
        tmp_path / "venv",
        wheels["botstate"],
        wheels["botstate-storage-example"],
        f"pytest=={version('pytest')}",
        f"pytest-asyncio=={version('pytest-asyncio')}",
    )
    out = run_script(
        python,
        f"""
        import asyncio, botstate

        async def main():
            by_url = botstate.open_storage("example:///{tmp_path}/data", namespace="bot")
            await by_url.set("chat:1", {{"n": 1}})
            by_name = botstate.open_storage({{"adapter": "example", "url": "example:///{tmp_path}/data"}})
            assert await by_name.get("bot:chat:1") == {{"n": 1}}
            info = {{a.name: a for a in botstate.list_adapters()}}["example"]
            print("OK", info.distribution, info.version, info.schemes)

        asyncio.run(main())
        """,
        tmp_path,
    )
    assert out.strip() == "OK botstate-storage-example 0.1.0 ('example',)"

    # Run the template's own tests from a copy, so no cache lands in the checkout.
    copy = tmp_path / "template"
    shutil.copytree(
        SOURCES["botstate-storage-example"],
        copy,
        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", "*.egg-info"),
    )
    proc = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=copy,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = proc.stdout.strip().splitlines()[-1]
    assert " passed" in summary
    assert "failed" not in summary
    assert "error" not in summary
