"""The agreement report flags a small disagreement, and refuses a partial matrix."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.meta.test_broken_adapters import ROOT, run_suite


def report(folder, expect: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "report", str(folder), "--expect", expect],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Records of the reference adapter and of one that is off on random values only."""
    folder = tmp_path_factory.mktemp("results")
    assert run_suite("numpy", f"--results-dir={folder}").returncode == 0
    sloppy = run_suite("tests.meta.broken:SloppyOnRandomValues", f"--results-dir={folder}")
    assert sloppy.returncode == 1  # it also fails its own checks; the report must flag it on its own
    return folder


def test_reference_alone_agrees(records, tmp_path):
    shutil.copy(records / "numpy.json", tmp_path)
    shutil.copy(records / "numpy.npz", tmp_path)
    result = report(tmp_path, "numpy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "AGREE" in result.stdout
    for name in ("agreement.md", "agreement.html"):
        assert (tmp_path / name).stat().st_size > 0


def test_small_disagreement_on_random_values_is_flagged(records, tmp_path):
    for name in ("numpy", "SloppyOnRandomValues"):
        for suffix in (".json", ".npz"):
            shutil.copy(records / f"{name}{suffix}", tmp_path)
    # Strip the failures from the sloppy record: the matrix alone must catch it.
    import json

    path = tmp_path / "SloppyOnRandomValues.json"
    rec = json.loads(path.read_text())
    rec["results"] = [r | {"outcome": "passed"} for r in rec["results"]]
    path.write_text(json.dumps(rec))
    result = report(tmp_path, "numpy,SloppyOnRandomValues")
    assert result.returncode == 1, result.stdout
    assert "pair(s) disagree beyond tolerance" in result.stdout
    rows = [line for line in result.stdout.splitlines() if line.startswith("| random_")]
    assert any("SloppyOnRandomValues/cpu" in r and "numpy/cpu" in r for r in rows), result.stdout
    # Integer-valued cases are not compared; only seeded random ones and trajectories are.
    assert not any(line.startswith("| fig_7_2_1 ") for line in result.stdout.splitlines())
    assert (tmp_path / "agreement.png").read_bytes()[:4] == b"\x89PNG"


def test_missing_record_fails(records, tmp_path):
    shutil.copy(records / "numpy.json", tmp_path)
    shutil.copy(records / "numpy.npz", tmp_path)
    result = report(tmp_path, "numpy,torch")
    assert result.returncode == 1
    assert "no record for backend 'torch', which this run was meant to cover" in result.stdout


@pytest.mark.parametrize("damaged", ["numpy.json", "numpy.npz"])
def test_truncated_record_fails(records, tmp_path, damaged):
    for suffix in (".json", ".npz"):
        shutil.copy(records / f"numpy{suffix}", tmp_path)
    data = (tmp_path / damaged).read_bytes()
    (tmp_path / damaged).write_bytes(data[: len(data) // 2])
    result = report(tmp_path, "numpy")
    assert result.returncode == 1
    assert "unreadable" in result.stdout and damaged in result.stdout, result.stdout
