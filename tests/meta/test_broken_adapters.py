"""Every deliberately broken adapter makes the suite fail, naming its mistake;
the reference adapter passes.  A check that no broken adapter fails is a defect."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: adapter -> words the failure report must contain.
CATALOGUE = {
    "FlippedKernel": "kernel looks flipped: this is convolution, not cross-correlation",
    "TransposedKernel": "kernel looks transposed",
    "OneRowShort": "1 row short",
    "SamePadding": "'SAME' padding where 'VALID' is meant",
    "TransposedOutput": "output transposed",
    "BiasIgnored": "the bias looks ignored",
    "BiasTwice": "the bias looks added twice",
    "Float64InFloat32": "values agree only to float32 precision: float64 computed in float32?",
    "RoundsThroughFloat16": "values agree only to float16 precision",
    "ModifiesInput": "modified its input X in place",
    "MeanLoss": "the loop uses the mean of the squared errors",
    "WrongLearningRate": "trajectory leaves its error bound",
    "WrongGradient": "dZ/dX",
    "WrongDevice": "the result lives on gpu, but cpu was asked for",
}


def run_suite(backend: str, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONV_CONFORMANCE_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "tests"), "--ignore", str(ROOT / "tests" / "meta"),
         f"--backend={backend}", "--device=cpu", "-p", "no:cacheprovider", "-q", "--tb=line", "-rfE", *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def outcome(result: subprocess.CompletedProcess) -> dict[str, int]:
    last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|error|errors)", last)}


def test_reference_adapter_passes():
    result = run_suite("numpy")
    counts = outcome(result)
    assert result.returncode == 0 and counts.get("passed", 0) > 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "failed" not in counts and "skipped" not in counts, counts


@pytest.mark.parametrize("adapter", sorted(CATALOGUE))
def test_broken_adapter_is_caught(adapter):
    result = run_suite(f"tests.meta.broken:{adapter}")
    counts = outcome(result)
    assert result.returncode == 1 and counts.get("failed", 0) > 0, (
        f"{adapter} was not caught: {counts}\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
    assert CATALOGUE[adapter] in result.stdout, (
        f"{adapter} failed {counts['failed']} checks, but no failure says {CATALOGUE[adapter]!r}:\n"
        + result.stdout[-4000:])
