"""The code samples of the documentation site and of every README it shows run.

Each file's Python blocks run in a fresh interpreter, in order, in a temporary
directory (``tooling/docs_samples.py``), so a sample that uses
``sqlite:///bot.db`` writes there. Blocks marked ``<!-- docs-test: skip (why)
-->`` are collected as skipped tests of their own, with the reason, so the run's
summary counts them; an unmarked block that cannot run fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tooling.docs_samples import (
    LOCAL_REDIS,
    PYTHON,
    ROOT,
    Block,
    SampleError,
    all_blocks,
    blocks,
    sources,
)

REDIS_DB = 9  # samples write to their own database of the shared test server

FILES = [f for f in sources() if any(b.runs for b in blocks(f))]
SKIPPED = [b for b in all_blocks() if b.language in PYTHON and not b.runs]


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", FILES, ids=[_id(f) for f in FILES])
def test_samples_run(path: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BOTSTATE_") and k not in ("PYTHONPATH", "PYTHONHOME")
    }
    # What the samples that open "the storage from the environment" say they read.
    env["BOTSTATE_STORAGE"] = "sqlite:///bot.db"
    env["PYTHONPATH"] = str(ROOT)
    if any(LOCAL_REDIS.search(b.code) for b in blocks(path) if b.runs):
        server = request.getfixturevalue("redis_server")
        env["DOCS_SAMPLES_REDIS_URL"] = f"redis://127.0.0.1:{server.port}/{REDIS_DB}"
    result = subprocess.run(
        [sys.executable, "-m", "tooling.docs_samples", "run", str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-6000:]


@pytest.mark.parametrize("block", SKIPPED, ids=[b.where for b in SKIPPED])
def test_marked_samples_are_counted(block: Block) -> None:
    pytest.skip(f"{block.where}: sample not run: {block.skip}")


def test_samples_are_found() -> None:
    python = [b for b in all_blocks() if b.language in PYTHON]
    run = [b for b in python if b.runs]
    assert {ROOT / "README.md", ROOT / "docs" / "getting-started.md"} <= set(FILES)
    assert len(run) >= 25
    # Most samples run; marking is for those that need what a test cannot have
    # (a bot token, AWS). Each marked one is listed as a skipped test.
    assert len(run) >= len(SKIPPED), [b.where for b in SKIPPED]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("<!-- docs-test: skip (no reason) -->\ntext\n```python\nx\n```\n", "not followed"),
        ("<!-- docs-test: skip () -->\n```python\nx\n```\n", "unknown marker"),
        ("<!-- docs-test: skip -->\n```python\nx\n```\n", "unknown marker"),
        ("<!-- docs-test: ignore (x) -->\n```python\nx\n```\n", "unknown marker"),
        ("<!-- docs-test: skip (x) -->\n```bash\nx\n```\n", "skip marker on a 'bash' block"),
        ("```python\nx\n", "never closed"),
        ("text\n<!-- docs-test: skip (x) -->\n", "not followed"),
    ],
)
def test_bad_markers_are_errors(tmp_path: Path, text: str, error: str) -> None:
    page = tmp_path / "page.md"
    page.write_text(text)
    with pytest.raises(SampleError, match=error):
        blocks(page)


def test_blocks_of_a_page(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n```python\nx = 1\n```\n\n<!-- docs-test: skip (needs a token) -->\n"
        '```py\nbot.run()\n```\n\n```toml title="bot.toml"\n[storage]\n```\n'
        "- item\n\n  ```python\n  y = x\n  ```\n"
    )
    found = blocks(page)
    assert [(b.line, b.language, b.code, b.skip, b.title) for b in found] == [
        (4, "python", "x = 1\n", None, None),
        (9, "py", "bot.run()\n", "needs a token", None),
        (13, "toml", "[storage]\n", None, "bot.toml"),
        (18, "python", "y = x\n", None, None),
    ]


def test_a_failing_sample_names_its_line(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```toml title='cfg.toml'\nk = 1\n```\n\n```python\nimport tomllib\n"
        "assert tomllib.load(open('cfg.toml', 'rb')) == {'k': 1}\n"
        "import asyncio\nawait asyncio.sleep(0)\n```\n\n```python\n\n1 / 0\n```\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "tooling.docs_samples", "run", str(page)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"{page}:13: this sample failed" in result.stderr
    assert f'File "{page}", line 14' in result.stderr
    assert "ZeroDivisionError" in result.stderr
