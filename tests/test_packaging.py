"""onnxruntime packaging: the GPU build where PyPI has wheels for it, the CPU build elsewhere,
never both (they install the same `onnxruntime` module, so the second overwrites the first)."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
ORT = {"onnxruntime", "onnxruntime-gpu"}
GPU_WHEELS = {("linux", "x86_64"), ("win32", "AMD64")}  # onnxruntime-gpu 1.31.1 on PyPI


def _ort_requirements() -> list[Requirement]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return [r for r in map(Requirement, deps) if r.name in ORT]


PLATFORMS = [
    ("linux", "x86_64"),
    ("linux", "aarch64"),
    ("win32", "AMD64"),
    ("win32", "ARM64"),
    ("darwin", "arm64"),
    ("darwin", "x86_64"),
]


@pytest.mark.parametrize(("platform", "machine"), PLATFORMS)
def test_exactly_one_onnxruntime_build_per_platform(platform, machine):
    env = {"sys_platform": platform, "platform_machine": machine}
    chosen = [r for r in _ort_requirements() if r.marker is None or r.marker.evaluate(env)]
    assert len(chosen) == 1, f"{platform}/{machine}: {[str(r) for r in chosen]}"
    want = "onnxruntime-gpu" if (platform, machine) in GPU_WHEELS else "onnxruntime"
    assert chosen[0].name == want


def test_both_builds_pinned_to_one_version():
    versions = {str(r.specifier) for r in _ort_requirements()}
    assert len(versions) == 1 and next(iter(versions)).startswith("==")


def test_this_environment_has_one_onnxruntime_distribution():
    installed = set()
    for name in ORT:
        try:
            importlib.metadata.version(name)
            installed.add(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    assert len(installed) == 1, f"installed: {sorted(installed)} (make setup fixes this)"
    import onnxruntime

    pinned = next(iter({str(r.specifier) for r in _ort_requirements()}))
    assert onnxruntime.__version__ == pinned.removeprefix("==")
