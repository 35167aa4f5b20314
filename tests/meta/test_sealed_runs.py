"""Sealed runs: CONFORMANT and AGREE only for a complete, clean run.

Every way a run can see less than the whole suite -- filtered, interrupted,
short of checks, skipped by the adapter itself, an adapter that implements
nothing or can run nowhere -- must end in NOT CONFORMANT or NO VERDICT, write
no record or one marked incomplete, and make the agreement report refuse.  A
record is believed only for its own matrix run, spec and suite, with its own
outputs.  And no adapter, option or folder ends the run in an INTERNALERROR.
"""

from __future__ import annotations

import json
import re
import signal

import pytest

from tests.meta.sealing import (
    ROOT,
    H,
    assert_refused,
    conformance,
    open_run,
    pytest_run,
    record,
    report,
    says_agree,
    signal_mid_run,
    verdict_line,
)


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """One complete numpy run in a matrix run: the record everything else is compared with."""
    folder = tmp_path_factory.mktemp("whole")
    open_run(folder)
    result = conformance("--backend=numpy", f"--results-dir={folder}")
    assert result.returncode == 0, result.stdout[-3000:]
    return folder


# -- a verdict never contradicts the run -------------------------------------


def test_a_whole_clean_run_is_conformant_complete_and_agrees(whole):
    rec = record(whole)
    assert rec["verdict"]["headline"] == "CONFORMANT" and rec["run"]["complete"] is True
    assert rec["run"]["exit_status"] == 0 and rec["run"]["narrowed"] == []
    assert all(row["missing"] == [] for row in rec["run"]["tripwire"])
    import spec

    assert rec["suite"] == {"version": spec.SUITE_VERSION, "spec_fingerprint": spec.fingerprint()}
    assert rec["run"]["id"] == json.loads((whole / "matrix.json").read_text())["run_id"]
    assert re.fullmatch(r"[0-9a-f]{64}", rec["outputs"]["sha256"]) and (whole / rec["outputs"]["file"]).exists()
    merged = report(whole, "--expect", "numpy")
    assert merged.returncode == 0 and "AGREE" in merged.stdout, merged.stdout[-3000:]


FILTERS = {
    "-k learning": ["-k", "learning"],
    "--deselect": ["--deselect",
                   "tests/test_edge_detection.py::test_edge_detection[numpy-cpu-float32-edge_6x8-conv2d]"],
    "-x after nothing failed": ["-x", "-k", "edge"],
}


@pytest.mark.parametrize("how", sorted(FILTERS))
def test_a_filtered_run_has_no_verdict_and_the_report_refuses_its_record(how, tmp_path):
    open_run(tmp_path)
    result = conformance("--backend=numpy", f"--results-dir={tmp_path}", *FILTERS[how])
    assert verdict_line(result) == "NO VERDICT", result.stdout[-3000:]
    assert "CONFORMANT" not in result.stdout.split("verdict:")[-1].splitlines()[0]
    rec = record(tmp_path)
    assert rec["run"]["complete"] is False and rec["verdict"]["headline"] == "NO VERDICT"
    assert_refused(tmp_path, "numpy", "an incomplete record")
    partial = report(tmp_path, "--partial")
    assert partial.returncode == 1 and "PARTIAL" in partial.stdout and not says_agree(partial.stdout)


def test_a_collect_only_run_leaves_the_records_as_it_found_them(tmp_path):
    """--co runs no check: no verdict, and neither a record of its own nor the loss of the complete one
    already there."""
    open_run(tmp_path)
    assert conformance("--backend=numpy", f"--results-dir={tmp_path}").returncode == 0
    before = (tmp_path / "numpy.json").read_bytes()
    result = conformance("--backend=numpy", f"--results-dir={tmp_path}", "--co")
    assert verdict_line(result) == "NO VERDICT", result.stdout[-3000:]
    assert (tmp_path / "numpy.json").read_bytes() == before


def test_a_narrower_path_has_no_verdict(tmp_path):
    open_run(tmp_path)
    result = pytest_run(str(ROOT / "tests" / "test_edge_detection.py"), "--backend=numpy", "-q",
                        "-p", "no:cacheprovider", f"--results-dir={tmp_path}")
    assert result.returncode == 0 and verdict_line(result) == "NO VERDICT", result.stdout[-3000:]
    assert record(tmp_path)["run"]["complete"] is False
    assert_refused(tmp_path, "numpy", "an incomplete record", "the run was narrowed (path ")


@pytest.mark.parametrize("how, status", [(["-k", "nothing_matches_this"], 5), (["-m", "no_such_marker"], 4)])
def test_a_run_that_selects_nothing_fails_and_leaves_an_incomplete_record(how, status, tmp_path):
    open_run(tmp_path)
    result = conformance("--backend=numpy", f"--results-dir={tmp_path}", *how)
    assert result.returncode == status, result.stdout[-2000:]  # pytest: no tests ran; an unknown marker
    assert verdict_line(result) == "NO VERDICT"
    assert record(tmp_path)["run"]["complete"] is False
    assert_refused(tmp_path, "numpy", "an incomplete record")


def test_last_failed_narrows_the_run(tmp_path):
    """``--lf`` runs only what failed last time: a run of one test is no verdict."""
    cache = tmp_path / "cache"
    (cache / "v" / "cache").mkdir(parents=True)
    failed = "tests/test_edge_detection.py::test_edge_detection[numpy-cpu-float32-edge_6x8-conv2d]"
    (cache / "v" / "cache" / "lastfailed").write_text(json.dumps({failed: True}))
    out = tmp_path / "out"
    open_run(out)
    result = pytest_run("tests", "--ignore=tests/meta", "--backend=numpy", "--device=cpu", "-q", "--lf",
                        "-o", f"cache_dir={cache}", f"--results-dir={out}")
    assert "1 passed" in result.stdout and verdict_line(result) == "NO VERDICT", result.stdout[-2000:]
    assert "--lf" in record(out)["run"]["narrowed"]
    assert_refused(out, "numpy", "an incomplete record")


def test_a_stale_xfail_entry_stops_the_run_and_its_record_is_incomplete(tmp_path):
    lists = tmp_path / "xfails"
    lists.mkdir()
    (lists / "numpy.txt").write_text("xfail: a typo\nupstream: https://example.org/1\n"
                                     "tests/test_edge_detection.py::test_edge_detection[numpy-cpu-float32-nope]\n")
    out = tmp_path / "out"
    open_run(out)
    result = conformance("--backend=numpy", f"--results-dir={out}", f"--xfails={lists}")
    assert result.returncode == 4, result.stdout[-2000:]
    assert "CONFORMANT" not in verdict_line(result) or verdict_line(result) == "NO VERDICT"
    assert not (out / "numpy.json").exists() or record(out)["run"]["complete"] is False
    assert_refused(out, "numpy")


def test_an_interrupted_run_leaves_an_incomplete_record(tmp_path):
    open_run(tmp_path, "numpy,Hangs")
    # numpy's tests are done after 10 s, and Hangs' first corr2d sleeps.
    status, out = signal_mid_run("numpy,tests.meta.broken:Hangs", tmp_path, signal.SIGINT, after=10, timeout=120)
    assert status == 2, out[-2000:]  # pytest: interrupted
    assert "verdict: numpy: NO VERDICT" in out and "the run was interrupted" in out, out[-3000:]
    for backend in ("numpy", "Hangs"):
        rec = record(tmp_path, backend)
        assert rec["run"]["complete"] is False and rec["run"]["exit_status"] == 2
    assert_refused(tmp_path, "numpy,Hangs", "an incomplete record", "the run was interrupted")


def test_an_error_in_teardown_fails_the_test_and_the_verdict(tmp_path):
    """The settings-leak check fires in teardown: pytest says 'error'; the verdict and the record agree."""
    result = conformance(f"--backend={H}:TeardownLeak", f"--results-dir={tmp_path}", "-k", "fig_7_2_1")
    assert result.returncode == 1 and " error" in result.stdout.splitlines()[-1], result.stdout[-2000:]
    assert verdict_line(result, "TeardownLeak") == "NOT CONFORMANT"
    errors = [r for r in record(tmp_path, "TeardownLeak")["results"] if r["outcome"] == "error"]
    assert errors and all(r["reason"].startswith("error in teardown: ") and "did not restore" in r["reason"]
                          for r in errors)


def test_the_tripwire_never_prints_conformant_above_itself():
    """A test lost without any option saying so (a plugin dropped it) fails the run, and the verdict says why."""
    dropped = "test_edge_detection[numpy-cpu-float32-edge_6x8-conv2d]"
    result = conformance("--backend=numpy", "-p", "tests.meta.plugins", env={"CC_META_DROP": dropped})
    assert result.returncode == 1, result.stdout[-2000:]
    assert verdict_line(result) == "NO VERDICT"
    assert "tripwire: 1 check(s) the spec asks did not run (first: numpy-cpu-float32: " \
           "test_edge_detection[edge_6x8-conv2d])" in result.stdout


def test_running_tests_twice_cannot_make_up_for_one_that_did_not_run():
    """xdist --dist each runs every test on each worker: twice the count, but one check is still missing."""
    dropped = "test_edge_detection[numpy-cpu-float32-edge_6x8-conv2d]"
    result = conformance("--backend=numpy", "-p", "tests.meta.plugins", "-p", "xdist", "-n", "2", "--dist", "each",
                         env={"CC_META_DROP": dropped})
    assert result.returncode == 1, result.stdout[-2000:]
    row = re.search(r"numpy-cpu-float32 +expected +(\d+) +ran +(\d+) ", result.stdout)
    assert row and int(row[2]) == int(row[1]) - 1, result.stdout[-3000:]
    assert "ran fewer checks than the spec asks" in result.stdout


@pytest.mark.parametrize("how", [["--rootdir", "{tmp}"], ["-k", ""], ["-k", " "], ["-m", ""]])
def test_the_tripwire_cannot_be_switched_off_by_spelling(how, tmp_path):
    dropped = "test_edge_detection[numpy-cpu-float32-edge_6x8-conv2d]"
    args = [a.replace("{tmp}", str(tmp_path)) for a in how]
    result = conformance("--backend=numpy", "-p", "tests.meta.plugins", *args, env={"CC_META_DROP": dropped})
    assert result.returncode == 1 and "ran fewer checks than the spec asks" in result.stdout, result.stdout[-2000:]


def test_the_tripwire_holds_when_run_from_another_folder(tmp_path):
    dropped = "test_edge_detection[numpy-cpu-float32-edge_6x8-conv2d]"
    result = pytest_run(str(ROOT / "tests"), "--ignore", str(ROOT / "tests" / "meta"), "--backend=numpy",
                        "--device=cpu", "-q", "-p", "no:cacheprovider", "-p", "tests.meta.plugins",
                        env={"CC_META_DROP": dropped, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert result.returncode == 1 and "ran fewer checks than the spec asks" in result.stdout, result.stdout[-2000:]


def test_an_adapter_that_implements_nothing_is_not_conformant(tmp_path):
    open_run(tmp_path, "ImplementsNothing")
    result = conformance(f"--backend={H}:ImplementsNothing", f"--results-dir={tmp_path}")
    assert result.returncode == 1, result.stdout[-2000:]
    assert verdict_line(result, "ImplementsNothing") == "NOT CONFORMANT"
    assert "below the core conformance level (docs/adapters.md)" in result.stdout
    out = assert_refused(tmp_path, "ImplementsNothing", "ImplementsNothing: NOT CONFORMANT: below the core")
    assert "| pass |" not in out and "| pass, but the backend is NOT CONFORMANT |" in out


def test_a_manifest_that_holds_neither_core_verb_anywhere_is_not_conformant():
    """Every check of conv2d and corr2d skips with the manifest's word (verb_dtypes): all documented
    skips, but nothing shows the core conformance level."""
    result = conformance(f"--backend={H}:NeitherCoreVerbAnywhere")
    assert result.returncode == 1, result.stdout[-2000:]
    assert verdict_line(result, "NeitherCoreVerbAnywhere") == "NOT CONFORMANT"
    assert "below the core conformance level (docs/adapters.md)" in result.stdout
    assert "not in the manifest: NeitherCoreVerbAnywhere.conv2d is declared in no dtype (verb_dtypes), not float32" \
        in result.stdout


def test_an_adapter_that_can_run_nowhere_here_is_an_error(tmp_path):
    """GPU dtypes only, on a machine without a GPU, under the default --device all: no check ran."""
    result = pytest_run(str(ROOT / "tests"), "--ignore", str(ROOT / "tests" / "meta"), f"--backend={H}:OnlyGPU",
                        "-q", "-p", "no:cacheprovider", f"--results-dir={tmp_path}")
    assert result.returncode == 1, result.stdout[-2000:]
    assert verdict_line(result, "OnlyGPU") == "NO VERDICT"
    assert "no check ran for this backend (every target was skipped)" in result.stdout
    assert record(tmp_path, "OnlyGPU")["run"]["complete"] is False


@pytest.mark.parametrize("adapter, words", [
    ("SkipsItself", "pytest.skip('conv2d is flaky on this framework') was called during the test, not by the suite"),
    ("XfailsItself", "pytest.xfail('corr2d is known to be off') was called during the test, not by the suite"),
    ("SkipsInNumerics", "pytest.skip('float16 is not interesting') was called during setup, not by the suite"),
])
def test_a_skip_or_xfail_raised_by_the_adapter_is_a_failure(adapter, words):
    result = conformance(f"--backend={H}:{adapter}", "-rfE")
    assert result.returncode == 1, result.stdout[-2000:]
    assert words in result.stdout and f"spec/xfails/{adapter}.txt" in result.stdout, result.stdout[-3000:]
    assert verdict_line(result, adapter) == "NOT CONFORMANT"


# -- no INTERNALERROR ----------------------------------------------------------


@pytest.mark.parametrize("args, env, words", [
    (["--backend=,"], {}, "--backend ',' names no backend"),
    ([], {"CONV_CONFORMANCE_BACKEND": " "}, "CONV_CONFORMANCE_BACKEND is set but blank"),
    (["--backend=:"], {}, "cannot load adapter ':'"),
    ([f"--backend={H}:NoSuchClass"], {}, "AttributeError"),
    ([f"--backend={H}:InitRaises"], {}, "InitRaises() raised RuntimeError: cannot construct"),
    ([f"--backend={H}:LoadRaises"], {}, "load() raised KeyError"),
    ([f"--backend={H}:LoadSkips"], {}, "load() raised Skipped: not today"),
    ([f"--backend={H}:GPUReasonRaises", "--device=all"], {}, "gpu_unavailable_reason() raised RuntimeError"),
    ([f"--backend={H}:NoTrainableDtype"], {}, "no declared dtype is in train_dtypes"),
    ([f"--backend={H}:UnknownDtype"], {}, "its manifest names ['float8']"),
    ([f"--backend={H}:VerbDtypesNotAMapping"], {}, "verb_dtypes must be {verb: (dtype, ...)}"),
    ([f"--backend={H}:VerbDtypesUnknownVerb"], {}, "verb_dtypes names 'conv3d', which is not a verb of the suite"),
    ([f"--backend={H}:VerbDtypesUndeclaredVerb"], {}, "verb_dtypes names 'conv2d', which its manifest does not"),
    ([f"--backend={H}:VerbDtypesUndeclaredDtype"], {}, "verb_dtypes lists ['bfloat16'] for 'conv2d', which dtypes"),
    (["--backend=numpy", "--results-dir=/proc/no/such/folder"], {}, "cannot write records there"),
])
def test_no_internal_error(args, env, words):
    base = [str(ROOT / "tests"), "--ignore", str(ROOT / "tests" / "meta"), "-q", "-p", "no:cacheprovider"]
    if not any(a.startswith("--device") for a in args):
        base.append("--device=cpu")
    result = pytest_run(*base, *args, env=env)
    out = result.stdout + result.stderr
    assert result.returncode == 4 and "INTERNALERROR" not in out and "Traceback" not in out, out[-3000:]
    assert words in out, out[-3000:]
