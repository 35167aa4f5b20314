"""The agreement report flags a small disagreement, and refuses a partial matrix."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.meta.test_broken_adapters import ROOT, run_suite


def report(folder, expect: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "report", str(folder), "--expect", expect],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def copy_record(src, dst, backend: str) -> None:
    """A backend's record, the outputs it names, and the matrix run it belongs to."""
    meta = json.loads((src / f"{backend}.json").read_text())
    for name in (f"{backend}.json", meta["outputs"]["file"], "matrix.json"):
        shutil.copy(src / name, dst)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Records of the reference adapter and of one that is off on random values only."""
    folder = tmp_path_factory.mktemp("results")
    subprocess.run([sys.executable, "-m", "report", "open", str(folder)], cwd=ROOT, check=True, capture_output=True)
    assert run_suite("numpy", f"--results-dir={folder}").returncode == 0
    sloppy = run_suite("tests.meta.broken:SloppyOnRandomValues", f"--results-dir={folder}")
    assert sloppy.returncode == 1  # it also fails its own checks; the report must flag it on its own
    return folder


def test_reference_alone_agrees(records, tmp_path):
    copy_record(records, tmp_path, "numpy")
    result = report(tmp_path, "numpy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "AGREE" in result.stdout
    for name in ("agreement.md", "agreement.html"):
        assert (tmp_path / name).stat().st_size > 0


def test_small_disagreement_on_random_values_is_flagged(records, tmp_path):
    for name in ("numpy", "SloppyOnRandomValues"):
        copy_record(records, tmp_path, name)
    # Strip the failures from the sloppy record: the matrix alone must catch it.
    path = tmp_path / "SloppyOnRandomValues.json"
    rec = json.loads(path.read_text())
    rec["results"] = [r | {"outcome": "passed"} for r in rec["results"]]
    rec["verdict"] = {"headline": "CONFORMANT", "not_conformant": [], "no_verdict": []}
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
    copy_record(records, tmp_path, "numpy")
    result = report(tmp_path, "numpy,torch")
    assert result.returncode == 1
    assert "no record for backend 'torch', which this run was meant to cover" in result.stdout


@pytest.mark.parametrize("damaged", ["numpy.json", "outputs"])
def test_truncated_record_fails(records, tmp_path, damaged):
    copy_record(records, tmp_path, "numpy")
    if damaged == "outputs":
        damaged = json.loads((tmp_path / "numpy.json").read_text())["outputs"]["file"]
    data = (tmp_path / damaged).read_bytes()
    (tmp_path / damaged).write_bytes(data[: len(data) // 2])
    result = report(tmp_path, "numpy")
    assert result.returncode == 1
    assert ("unreadable" in result.stdout or "SHA-256 is not the one" in result.stdout) and damaged in result.stdout, \
        result.stdout


def test_nan_in_an_output_is_a_disagreement_not_agreement(records, tmp_path):
    """A comparison written ``units > 1`` is False for NaN; the report counts NaN as a disagreement."""
    import hashlib

    import numpy as np

    for name in ("numpy", "SloppyOnRandomValues"):
        copy_record(records, tmp_path, name)
    path = tmp_path / "SloppyOnRandomValues.json"
    rec = json.loads(path.read_text())
    npz = tmp_path / rec["outputs"]["file"]
    with np.load(npz) as z:  # every output; the generated draws' inputs stay what was drawn
        arrays = {k: z[k] if k.split("|")[1].endswith(("-X", "-K", "-params")) else np.full_like(z[k], np.nan)
                  for k in z.files}
    np.savez(npz, **arrays)
    rec["outputs"]["sha256"] = hashlib.sha256(npz.read_bytes()).hexdigest()
    rec["results"] = [r | {"outcome": "passed"} for r in rec["results"]]
    rec["verdict"] = {"headline": "CONFORMANT", "not_conformant": [], "no_verdict": []}
    path.write_text(json.dumps(rec))
    result = report(tmp_path, "numpy,SloppyOnRandomValues")
    assert result.returncode == 1 and "pair(s) disagree beyond tolerance" in result.stdout, result.stdout[-3000:]


def test_known_deviations_are_a_table_of_their_own(tmp_path):
    """A backend conformant with known deviations agrees; its deviations are listed apart from skips,
    with the reason, the list's file:line and the upstream link."""
    lists = tmp_path / "lists"
    lists.mkdir()
    ids = [f"tests/test_edge_detection.py::test_edge_detection[FlipsOnTheEdgeImage-cpu-float32-edge_6x8-{op}]"
           for op in ("corr2d", "conv2d", "corr2d_matmul")]
    (lists / "FlipsOnTheEdgeImage.txt").write_text("xfail: flipped on purpose\nupstream: https://example.org/9\n"
                                                   + "\n".join(ids) + "\n")
    out = tmp_path / "out"
    subprocess.run([sys.executable, "-m", "report", "open", str(out)], cwd=ROOT, check=True, capture_output=True)
    run = run_suite("tests.meta.broken:FlipsOnTheEdgeImage", f"--xfails={lists}", f"--results-dir={out}")
    assert run.returncode == 0, run.stdout[-2000:]
    result = report(out, "FlipsOnTheEdgeImage")
    assert result.returncode == 0 and "AGREE" in result.stdout, result.stdout[-3000:]
    md = (out / "agreement.md").read_text()
    table = md.split("## Known deviations (spec/xfails)")[1].split("##")[0]
    assert "| FlipsOnTheEdgeImage | 3 | xfailed |" in table and "flipped on purpose" in table
    assert "https://example.org/9" in table and "FlipsOnTheEdgeImage.txt)" in table
    assert "| finding (docs/findings.md) |" in table and table.count("| - |") >= 1  # its reason names no finding
    assert "flipped on purpose" not in md.split("## Skips, by reason")[-1] or "## Skips, by reason" not in md


def _edit_outputs(tmp_path, backend: str, change) -> None:
    """Rewrite a copied record's outputs with ``change(arrays)``, its failures stripped and its SHA-256
    restated: only the report's own comparison can then catch what ``change`` did."""
    import hashlib

    import numpy as np

    path = tmp_path / f"{backend}.json"
    rec = json.loads(path.read_text())
    npz = tmp_path / rec["outputs"]["file"]
    with np.load(npz) as z:
        arrays = {k: z[k].copy() for k in z.files}
    change(arrays)
    np.savez(npz, **arrays)
    rec["outputs"]["sha256"] = hashlib.sha256(npz.read_bytes()).hexdigest()
    rec["results"] = [r | {"outcome": "passed"} for r in rec["results"]]
    rec["verdict"] = {"headline": "CONFORMANT", "not_conformant": [], "no_verdict": []}
    path.write_text(json.dumps(rec))


def _generated(arrays: dict, part: str = "", kind: str = "integers") -> list[str]:
    """The keys of one kind of generated draws' outputs (``part`` "": the results; "-X" etc.: the draws)."""
    whats = {k: k.split("|")[1] for k in arrays}
    return sorted(k for k, what in whats.items() if what.startswith(f"generated-{kind}-") and what.endswith(part)
                  and (part or not what.endswith(("-X", "-K", "-params"))))


#: Each kind of generated output the report compares, and the property that records it.
CHAPTER = "test_generated_corr2d_matches_the_oracle"
KINDS = {"integers": "test_generated_conv_matches_the_oracle", "floats": "test_generated_floats_within_the_error_bound",
         "pool": "test_generated_pool_matches_the_oracle", "corr2d": CHAPTER, "conv2d": CHAPTER,
         "corr2d_matmul": CHAPTER}


def test_generated_draws_are_compared_across_targets(records, tmp_path):
    """The same derandomized draws in two backends' runs: each draw's outputs paired."""
    for name in ("numpy", "SloppyOnRandomValues"):
        copy_record(records, tmp_path, name)
    result = report(tmp_path, "numpy,SloppyOnRandomValues")
    assert "## Generated cases" in result.stdout, result.stdout[-3000:]
    table = result.stdout.split("## Generated cases", 1)[1].split("\n## ", 1)[0]
    for kind in ("integers", "pool", "corr2d", "conv2d", "corr2d_matmul"):  # exact: both sides agree to 0
        assert f"| {kind} | float64 | 10 | 2 | 10 | 0 | 0 |" in table, table


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_generated_disagreement_is_flagged(records, tmp_path, kind):
    """One drawn output off by one in one target: a disagreement, named by its draw."""
    for name in ("numpy", "SloppyOnRandomValues"):
        copy_record(records, tmp_path, name)

    def off_by_one(arrays):
        key = _generated(arrays, kind=kind)[0]
        arrays[key][(0,) * arrays[key].ndim] += 1.0

    _edit_outputs(tmp_path, "SloppyOnRandomValues", off_by_one)
    result = report(tmp_path, "numpy,SloppyOnRandomValues")
    assert result.returncode == 1 and "pair(s) disagree beyond tolerance" in result.stdout, result.stdout[-3000:]
    assert any(line.startswith(f"| {KINDS[kind]} | generated-{kind}-")
               for line in result.stdout.splitlines()), result.stdout[-3000:]


@pytest.mark.parametrize("part, kind", [("-X", "integers"), ("-params", "integers"), ("-X", "pool"),
                                        ("-params", "pool"), ("-K", "corr2d")])
def test_a_generated_output_whose_draw_was_changed_is_refused(records, tmp_path, part, kind):
    """The tolerance is recomputed from the draw the record carries, and that draw must be the one the
    output's name digests: a record cannot widen its own bound by changing it."""
    copy_record(records, tmp_path, "numpy")

    def tamper(arrays):
        key = _generated(arrays, part, kind)[0]
        if part != "-params":
            arrays[key][(0,) * arrays[key].ndim] += 0.5
        else:  # the parameters, as JSON bytes: ask for another padding
            text = arrays[key].astype("uint8").tobytes().decode()
            import numpy as np
            changed = text.replace('"padding": "', '"padding": "x').replace('"padding": [', '"padding": ["x", ')
            assert changed != text
            arrays[key] = np.frombuffer(changed.encode(), dtype="uint8").astype(float)

    _edit_outputs(tmp_path, "numpy", tamper)
    result = report(tmp_path, "numpy")
    assert result.returncode == 1, result.stdout[-2000:]
    assert "the draw it carries is not the one its name digests" in result.stdout, result.stdout[-2000:]


@pytest.mark.parametrize("kind", ["integers", "pool", "corr2d"])
def test_a_generated_output_without_its_draw_is_refused(records, tmp_path, kind):
    copy_record(records, tmp_path, "numpy")
    _edit_outputs(tmp_path, "numpy", lambda arrays: arrays.pop(_generated(arrays, "-K", kind)[0]))
    result = report(tmp_path, "numpy")
    assert result.returncode == 1 and "comes without its draw (K)" in result.stdout, result.stdout[-2000:]
