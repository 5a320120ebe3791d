"""The redis-py range botstate-storage-redis declares, and the CI envs that test its ends."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the hatch env installs tomli on 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def _toml(path: str) -> dict[str, Any]:
    return tomllib.loads((ROOT / path).read_text(encoding="utf-8"))


def _redis(requirements: list[str]) -> Requirement:
    return next(r for r in map(Requirement, requirements) if r.name == "redis")


def _pin(env: str) -> Version:
    (dependency,) = _toml("hatch.toml")["envs"][env]["extra-dependencies"]
    (spec,) = _redis([dependency]).specifier
    assert spec.operator == "=="
    return Version(spec.version)


def test_ci_envs_pin_the_ends_of_the_declared_range() -> None:
    project = _toml("packages/storage-redis/pyproject.toml")["project"]
    declared = _redis(project["dependencies"]).specifier
    assert _redis(project["optional-dependencies"]["hiredis"]).specifier == declared
    floor = Version(next(s.version for s in declared if s.operator == ">="))
    ceiling = Version(next(s.version for s in declared if s.operator == "<"))
    lowest, highest = _pin("redis-lowest"), _pin("redis-highest")
    assert lowest == floor
    assert highest in declared and highest.major == ceiling.major - 1
    assert Version("6.2") in declared and Version("7.4.1") in declared  # aiogram[redis]'s range


def test_installed_redis_py_is_in_the_declared_range() -> None:
    project = _toml("packages/storage-redis/pyproject.toml")["project"]
    assert Version(metadata.version("redis")) in _redis(project["dependencies"]).specifier
