"""The GPU code paths, on a simulated GPU (tests/meta/simgpu.py): device
attestation, the precision modes and their settings, the repeat check, and
CPU/GPU agreement in the report.  (The catalogue in test_broken_adapters.py
holds the adapters that must fail: output left on the CPU, TF32 left on in
strict mode, a switch that does not take, nondeterminism that was promised
away.)"""

from __future__ import annotations

import subprocess
import sys

from tests.meta.test_broken_adapters import ROOT, outcome, run_suite

SIM = "tests.meta.simgpu:SimulatedTF32"


def open_run(folder) -> None:
    subprocess.run([sys.executable, "-m", "report", "open", str(folder)], cwd=ROOT, check=True, capture_output=True)


def test_simulated_tf32_gpu_conforms_in_both_modes(tmp_path):
    open_run(tmp_path)
    result = run_suite(SIM, "--precision=all", f"--results-dir={tmp_path}", device="all")
    counts = outcome(result)
    assert result.returncode == 0 and "failed" not in counts and "skipped" not in counts, result.stdout[-3000:]
    for tid in ("SimulatedTF32-gpu-float32 ", "SimulatedTF32-gpu-float32-fast ", "SimulatedTF32-cpu-float32-fast "):
        assert tid in result.stdout  # every device x mode ran, by its id
    merged = subprocess.run([sys.executable, "-m", "report", str(tmp_path), "--expect", "SimulatedTF32"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    md = (tmp_path / "agreement.md").read_text()
    # CPU <-> GPU of one backend, and strict <-> fast, are pairs of the agreement matrix.
    assert "| SimulatedTF32/cpu | · | 0 (0) | 0 (0) | 0.408 (0.0013) |" in md
    # How far the fast mode is from the oracle: TF32's error, within TF32's bound.
    assert "| SimulatedTF32 | gpu | float32 | fast | 0.00128 | 0.408 |" in md


def test_tf32_is_accepted_in_fast_mode_only():
    fast = run_suite("tests.meta.broken:TF32LeftOn", "--precision=fast", device="gpu")
    assert fast.returncode == 0, fast.stdout[-2000:]
    strict = run_suite("tests.meta.broken:TF32LeftOn", "--precision=strict", device="gpu")
    assert strict.returncode == 1 and "11-bit precision" in strict.stdout


def test_a_leaked_setting_is_an_error_naming_it():
    result = run_suite("tests.meta.broken:LeaksSettings", device="gpu")
    assert result.returncode == 1, result.stdout[-2000:]
    assert "did not restore: allow_tf32 was True, is now False" in result.stdout


def test_nondeterminism_that_is_not_promised_is_reported_not_failed(tmp_path):
    open_run(tmp_path)
    result = run_suite("tests.meta.broken:NondeterministicAndSaysSo", f"--results-dir={tmp_path}", device="all")
    assert result.returncode == 0, result.stdout[-2000:]
    assert ("NondeterministicAndSaysSo-gpu-float32: not repeatable (conv2d forward: 1 of 35 values differ"
            in result.stdout)
    assert "not promised: the simulated GPU sums with atomics" in result.stdout
    merged = subprocess.run([sys.executable, "-m", "report", str(tmp_path), "--expect", "NondeterministicAndSaysSo"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    md = (tmp_path / "agreement.md").read_text()
    assert "## Repeatability: 3 target(s) gave the same bits twice, as promised." in md  # the CPU ones
    assert "| NondeterministicAndSaysSo | gpu | float32 | strict | not repeatable (conv2d forward" in md


def test_gpu_matrix_without_a_gpu_is_an_error_not_a_green_run():
    """The documented GPU command (docs/gpu.md) on a machine without one."""
    result = run_suite("numpy", "--precision=all", device="gpu")
    assert result.returncode == 4 and "--device gpu was asked for, but numpy has no GPU" in result.stderr
