"""``conv-conformance repro``: a failing check of a broken adapter becomes a script that fails the same way
outside pytest and without the suite; what cannot be reproduced is a one-line error, exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.meta.test_broken_adapters import ROOT

B = "tests.meta.broken"
#: Opens every file the script reads, and fails it if one is a Python file of the suite's tree: its modules
#: travel inside the script.
AUDIT = """
import runpy, sys
root, script = sys.argv[1], sys.argv[2]
def audit(event, args):
    if event == "open" and isinstance(args[0], str) and args[0].startswith(root) and args[0].endswith(".py"):
        raise SystemExit(f"the script read the suite's {args[0]}")
sys.addaudithook(audit)
sys.argv = [script]
runpy.run_path(script, run_name="__main__")
"""


def repro(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conv_conformance", "repro", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize(("adapter", "nodeid", "says"), [
    ("FlippedKernel",
     "tests/test_cross_correlation.py::test_cross_correlation[FlippedKernel-cpu-float32-fig_7_2_1-corr2d]",
     "4 of 4 values outside tolerance"),
    ("GradientsSwapped",
     "tests/test_conventions.py::test_conv_general_vjp[GradientsSwapped-cpu-float64-general_fig_7_2_1]",
     "shape (1, 1, 2, 2), expected (1, 1, 3, 3)"),
    ("NoParameterChecks",
     "tests/test_conventions.py::test_conv_general_error[NoParameterChecks-cpu-float16-reflect_pad_too_large]",
     "conv_general: returned a result where the spec says this is an error"),
    ("Float64InFloat32",
     "tests/test_cross_correlation.py::test_cross_correlation[Float64InFloat32-cpu-float64-random_7x9_k3x3-corr2d]",
     "values outside tolerance"),
])
def test_a_failing_check_becomes_a_script_that_fails_the_same_way_without_the_suite(adapter, nodeid, says, tmp_path):
    made = repro(nodeid, f"--backend={B}:{adapter}", "-o", str(tmp_path / "repro.py"))
    assert made.returncode == 0, made.stderr
    text = (tmp_path / "repro.py").read_text()
    assert f"check:   {nodeid}" in text and f"adapter: {B}:{adapter}" in text and "conv-conformance 0." in text
    run = subprocess.run([sys.executable, "-c", AUDIT, str(ROOT), str(tmp_path / "repro.py")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300, env={"PATH": "/usr/bin:/bin"})
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    assert says in run.stdout and "FAILS:" in run.stdout, run.stdout[-2000:]


def test_the_script_of_a_conforming_adapter_passes(tmp_path):
    """The control: the same script's calls on the reference adapter pass (exit 0); what fails above is the
    broken adapter, not the script."""
    nodeid = "tests/test_cross_correlation.py::test_cross_correlation[FlippedKernel-cpu-float32-fig_7_2_1-corr2d]"
    assert repro(nodeid, f"--backend={B}:FlippedKernel", "-o", str(tmp_path / "repro.py")).returncode == 0
    text = (tmp_path / "repro.py").read_text().replace("from tests.meta.broken import FlippedKernel as Adapter",
                                                       "from backends.numpy import NumpyBackend as Adapter")
    (tmp_path / "control.py").write_text(text)
    run = subprocess.run([sys.executable, str(tmp_path / "control.py")], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0 and "passes" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]


@pytest.mark.parametrize(("args", "words"), [
    (("tests/test_cross_correlation.py::test_cross_correlation[numpy-cpu-float32-fig_7_2_1-corr2d]",),
     "the check passed with --backend=numpy: there is nothing to reproduce"),
    (("tests/test_cross_correlation.py::test_nope[numpy-cpu-float32]",), "no such test"),
    (("tests/test_nope.py::test_x[numpy-cpu-float32]",), "no such test file in the suite"),
    (("fig_7_2_1",), "is not a test id"),
])
def test_what_cannot_be_reproduced_is_one_line_and_exit_2(args, words):
    result = repro(*args)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in result.stderr, result.stderr


def test_a_check_it_cannot_replay_says_so_in_one_line_with_the_checks_own_message():
    """A learning trajectory is not the value of one verb's result: exit 2, the check's own words, no script."""
    nodeid = ("tests/test_learning_kernel.py::test_replay_from_own_initialisation"
              "[learn_edge_kernel-MeanLoss-cpu-float32]")
    result = repro(nodeid, f"--backend={B}:MeanLoss")
    assert result.returncode == 2 and result.stdout == "", result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot replay it yet" in lines[0] and "the mean of the squared errors" in lines[0]
