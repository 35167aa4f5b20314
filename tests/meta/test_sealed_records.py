"""Sealed records: a record says what run it came from, and the report believes nothing else.

A record is believed only for its own matrix run (one left by an env whose
install failed is refused, proven with tox itself), complete, of the report's
own spec and suite, with its own outputs; no record is lost because of another
backend, and none is torn by concurrent runs.  (The verdict side:
``test_sealed_runs.py``.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

from tests.meta.sealing import (
    ROOT,
    H,
    assert_refused,
    conformance,
    open_run,
    record,
    report,
    says_agree,
    verdict_line,
)
from tests.meta.test_broken_adapters import run_suite

# -- a record says what run it came from, and the report believes nothing else --


def _copy(src, dst, backend: str = "numpy"):
    rec = record(src, backend)
    shutil.copy(src / f"{backend}.json", dst)
    shutil.copy(src / rec["outputs"]["file"], dst)
    shutil.copy(src / "matrix.json", dst)


def test_a_record_left_by_an_earlier_matrix_run_is_refused(tmp_path):
    """The failed-install case: run 2 is opened, one env never runs, its record from run 1 stays."""
    first = open_run(tmp_path, "numpy,AnotherReference")
    assert conformance(f"--backend=numpy,{H}:AnotherReference", f"--results-dir={tmp_path}").returncode == 0
    assert report(tmp_path).returncode == 0
    second = open_run(tmp_path, "numpy,AnotherReference")
    assert conformance("--backend=numpy", f"--results-dir={tmp_path}").returncode == 0  # AnotherReference: no env
    out = assert_refused(tmp_path, "numpy,AnotherReference",
                         f"AnotherReference.json: from matrix run {first}", f"not from this run {second}",
                         "did AnotherReference's env fail to install, or not run?")
    assert "numpy.json: from matrix run" not in out


def test_without_an_opened_matrix_run_the_report_refuses(whole, tmp_path):
    _copy(whole, tmp_path)
    (tmp_path / "matrix.json").unlink()
    assert_refused(tmp_path, "numpy", "no matrix run was opened here")


def _edited(whole, tmp_path, edit):
    _copy(whole, tmp_path)
    rec = record(tmp_path)
    edit(rec)
    (tmp_path / "numpy.json").write_text(json.dumps(rec))
    return tmp_path


def test_a_record_that_predates_its_matrix_run_is_refused(whole, tmp_path):
    def earlier(rec):
        rec["run"]["started_ts"] -= 3600
    assert_refused(_edited(whole, tmp_path, earlier), "numpy", "before this matrix run was opened")


@pytest.mark.parametrize("field, words", [("spec_fingerprint", "records of another spec fingerprint"),
                                          ("version", "records of another suite version")])
def test_records_of_another_spec_or_suite_are_refused(whole, tmp_path, field, words):
    def other(rec):
        rec["suite"][field] = "0" * 64 if field == "spec_fingerprint" else "0.0.1"
    assert_refused(_edited(whole, tmp_path, other), "numpy", words)


def test_outputs_whose_hash_does_not_match_are_refused(whole, tmp_path):
    _copy(whole, tmp_path)
    npz = tmp_path / record(tmp_path)["outputs"]["file"]
    with np.load(npz) as z:
        arrays = {k: z[k] + (1e-3 if i == 0 else 0) for i, k in enumerate(z.files)}
    np.savez(npz, **arrays)  # a valid file, other values: another run's outputs
    assert_refused(tmp_path, "numpy", "its SHA-256 is not the one numpy.json states")


@pytest.mark.parametrize("path", [("run",), ("run", "complete"), ("verdict",), ("outputs", "sha256"), ("suite",),
                                  ("results", 0, "outcome")])
def test_a_record_with_a_missing_field_is_a_named_problem(whole, tmp_path, path):
    def drop(rec):
        node = rec
        for p in path[:-1]:
            node = node[p]
        del node[path[-1]]
    out = assert_refused(_edited(whole, tmp_path, drop), "numpy", "numpy.json: malformed record")
    assert "Traceback" not in out


def test_partial_never_says_agree(whole, tmp_path):
    _copy(whole, tmp_path)
    merged = report(tmp_path, "--partial")
    assert merged.returncode == 1 and "PARTIAL" in merged.stdout and not says_agree(merged.stdout)


# -- no record is lost because of another backend, and none is torn ----------


def test_a_backend_whose_version_raises_fails_alone_and_the_others_records_are_kept(tmp_path):
    result = conformance(f"--backend=numpy,{H}:VersionRaises", f"--results-dir={tmp_path}")
    assert result.returncode == 1 and "INTERNALERROR" not in result.stdout + result.stderr, result.stdout[-3000:]
    assert verdict_line(result, "VersionRaises") == "NOT CONFORMANT"
    assert "version() raised RuntimeError: no version here" in result.stdout
    assert record(tmp_path)["verdict"]["headline"] == "CONFORMANT" and record(tmp_path)["run"]["complete"]
    assert "version() raised" in " ".join(record(tmp_path, "VersionRaises")["verdict"]["not_conformant"])


def test_where_records_go_is_read_once_at_the_start(tmp_path):
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    result = conformance(f"--backend={H}:MovesTheResults", env={"CONV_CONFORMANCE_RESULTS": str(here),
                                                                 "CC_META_ELSEWHERE": str(elsewhere)})
    assert (here / "MovesTheResults.json").exists() and not elsewhere.exists(), result.stdout[-2000:]
    # Changing the environment is itself a leak that the suite's own snapshot catches.
    assert result.returncode == 1 and "os.environ['CONV_CONFORMANCE_RESULTS'] was" in result.stdout


def test_concurrent_runs_on_one_folder_never_mix_files(tmp_path):
    open_run(tmp_path)
    results = []

    def run():
        results.append(conformance("--backend=numpy", f"--results-dir={tmp_path}"))
    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.returncode for r in results] == [0, 0], [r.stdout[-1000:] for r in results]
    rec = record(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("numpy*")) == sorted(["numpy.json", rec["outputs"]["file"]])
    merged = report(tmp_path, "--expect", "numpy")
    assert merged.returncode == 0 and "AGREE" in merged.stdout, merged.stdout[-2000:]


def test_a_registered_name_that_is_taken_is_an_error_naming_both_classes():
    result = run_suite("tests.meta.takes_a_name:ClaimsNumpy")
    assert result.returncode == 4 and "INTERNALERROR" not in result.stdout + result.stderr
    assert ("backend name 'numpy' of tests.meta.takes_a_name.ClaimsNumpy is already taken by "
            "backends.numpy.NumpyBackend") in result.stderr


# -- what a record names: the suite and the spec ------------------------------


def test_the_suite_version_is_the_one_pyproject_declares():
    import tomllib

    import spec

    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"] == spec.SUITE_VERSION


@pytest.mark.parametrize("edit", ["cases/cross_correlation.json", "schema.json", "numerics.py"])
def test_the_spec_fingerprint_changes_with_any_case_schema_or_tolerance_code(tmp_path, edit):
    import spec

    shutil.copytree(ROOT / "spec", tmp_path / "spec")
    path = tmp_path / "spec" / edit
    path.write_text(path.read_text() + "\n")
    changed = subprocess.run([sys.executable, "-c", "import spec; print(spec.fingerprint())"], cwd=tmp_path,
                             env={**os.environ, "PYTHONPATH": str(tmp_path)}, capture_output=True, text=True)
    assert changed.returncode == 0, changed.stderr
    assert re.fullmatch(r"[0-9a-f]{64}", changed.stdout.strip()) and changed.stdout.strip() != spec.fingerprint()


def test_a_tox_env_whose_install_fails_leaves_a_record_the_report_refuses(tmp_path):
    """The failed-install case, for real: a copy of the suite, tox, the numpy env of a second matrix
    run cannot install, so its commands never run and the first run's record stays behind."""
    repo, work = tmp_path / "repo", tmp_path / "work"
    shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(".git", ".tox", ".ci", "results", "__pycache__",
                                                              ".pytest_cache", ".ruff_cache"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOX_", "CONV_CONFORMANCE_", "VIRTUAL_ENV"))}

    def tox(*args):
        return subprocess.run([sys.executable, "-m", "tox", "--workdir", str(work), "-c", str(repo / "tox.ini"),
                               "r", "-q", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=900)

    def merged():
        return subprocess.run([sys.executable, "-m", "report", str(repo / "results"), "--expect", "numpy"],
                              cwd=repo, capture_output=True, text=True, timeout=300)

    first = tox("-e", "open,numpy")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    assert merged().returncode == 0
    run1 = json.loads((repo / "results" / "matrix.json").read_text())["run_id"]
    assert tox("-e", "open").returncode == 0
    run2 = json.loads((repo / "results" / "matrix.json").read_text())["run_id"]
    broken = tox("-e", "numpy", "-x", "testenv:numpy.deps+=no-such-package-conv-conformance-zz")
    assert broken.returncode != 0 and (repo / "results" / "numpy.json").exists()  # the old record stayed
    out = merged()
    assert out.returncode == 1 and not says_agree(out.stdout), out.stdout[-3000:]
    assert f"numpy.json: from matrix run {run1}" in out.stdout and f"not from this run {run2}" in out.stdout
