"""Runners (docs/runners.md): a program in another process, behind the one adapter for all runners,
gets the same verdict, records and report as an in-process adapter; each way a runner can go wrong is a
named failure of the test that met it (or, before the handshake, a usage error), never a hang and never
a pass.  The runner here is tests/meta/runners/pyrunner.py: the reference computations behind the
protocol, with a fault chosen by its arguments."""

from __future__ import annotations

import json
import os
import sys

import pytest

from tests.meta.test_broken_adapters import ROOT, outcome, run_suite

RUNNER = f"runner:{sys.executable},tests/meta/runners/pyrunner.py"
#: A narrow run for the faults: one case, one dtype, one mode (the rest is the same machinery).
NARROW = ("-k", "fig_7_2_1 and float32 and not fast")


def faulty(fault: str, *more: str) -> str:
    return ",".join((RUNNER, "--fault", fault, *more))


def test_a_conforming_runner_is_conformant_and_recorded(tmp_path):
    result = run_suite(RUNNER, f"--results-dir={tmp_path}")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "verdict: pyrunner: CONFORMANT" in result.stdout
    record = json.loads((tmp_path / "pyrunner.json").read_text())
    assert record["framework"] == "NumPy behind the protocol", record["framework"]
    assert record["framework_version"].endswith(", through the runner protocol)"), record["framework_version"]
    assert record["declared_dtypes"] == {"cpu": ["float16", "float32", "float64"]}, record["declared_dtypes"]


@pytest.mark.parametrize("fault, words", [
    ("exit_at_start", "the runner exited with status 3 before its handshake; its last stderr lines: cannot find "
                      "my framework"),
    ("old_version", "speaks 'conv-conformance-runner' version 2, the suite 'conv-conformance-runner' version 1"),
])
def test_a_runner_that_cannot_start_is_an_error_not_a_skip(fault, words):
    result = run_suite(faulty(fault), *NARROW)
    assert result.returncode == 4, result.stdout[-2000:] + result.stderr[-2000:]  # pytest's usage error
    assert "did not start" in result.stderr and words in result.stderr, result.stderr[-2000:]


def test_a_runner_that_never_says_hello_is_not_waited_for_forever():
    result = run_suite(faulty("no_hello"), *NARROW, env_extra={"CONV_CONFORMANCE_RUNNER_START_TIMEOUT": "2"})
    assert result.returncode == 4 and "no response within 2 s before its handshake" in result.stderr, \
        result.stderr[-2000:]


@pytest.mark.parametrize("fault, more, words", [
    ("crash", ("--on", "corr2d"), "the runner exited with status 7 to corr2d"),
    ("hang", ("--on", "corr2d"), "no response within 2 s to corr2d"),
    ("noise", ("--on", "corr2d"), "protocol error: a line that is not JSON to corr2d"),
    ("not_json", ("--on", "corr2d"), "protocol error: a line that is not JSON to corr2d"),
    ("wrong_id", ("--on", "corr2d"), "protocol error: a response to request"),
    ("unheld_value", ("--on", "corr2d"), "is declared float32 but holds values that float32 cannot hold"),
    ("wrong_shape", ("--on", "corr2d"), "corr2d on fig_7_2_1 (pyrunner-cpu-float32): output shape 2x3, expected 2x2"),
    ("wrong_dtype", ("--on", "corr2d"), "the result is float16, but the inputs were float32"),
])
def test_a_fault_mid_run_fails_that_test_and_the_run_goes_on(fault, more, words):
    """Every corr2d request meets the fault (the restarted runner meets it again); conv2d and the rest
    still pass: the runner was restarted after each fault."""
    result = run_suite(faulty(fault, *more), *NARROW, env_extra={"CONV_CONFORMANCE_RUNNER_TIMEOUT": "2"})
    counts = outcome(result)
    assert result.returncode == 1 and counts.get("failed", 0) >= 1 and counts.get("passed", 0) >= 1, \
        result.stdout[-3000:]
    assert words in result.stdout, result.stdout[-3000:]
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert failed and all("corr2d" in line and "corr2d_matmul" not in line for line in failed), failed


def test_a_runner_that_exits_after_its_handshake_fails_every_test_and_is_not_conformant():
    result = run_suite(faulty("exit_after_hello"), *NARROW)
    counts = outcome(result)
    assert result.returncode == 1 and counts.get("failed", 0) >= 10 and "passed" not in counts, result.stdout[-2000:]
    assert "the runner exited with status 0" in result.stdout
    assert "verdict: pyrunner: NOT CONFORMANT" in result.stdout


def test_the_runner_schema_is_the_one_the_docs_describe():
    """Every message example in docs/runners.md's handshake and response sections validates."""
    from backends import runner

    docs = (ROOT / "docs" / "runners.md").read_text()
    hello = json.loads(docs.split("## 1. Handshake", 1)[1].split("```json", 1)[1].split("```", 1)[0])
    assert runner._validate("hello", hello) == ""
    lines = docs.split("## 2. Requests", 1)[1].split("```json", 1)[1].split("```", 1)[0].strip().splitlines()
    response = json.loads(lines[-1])
    assert runner._validate("response", response) == ""
    assert runner._validate("response", {"id": 1}) != ""  # neither a result nor an error
    assert os.path.isfile(runner.SCHEMA_PATH)
