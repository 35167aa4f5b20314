"""Mistakes that only generated cases find: each broken adapter passes every fixed case of the spec and
fails a generated property, shrunk to a small example that is printed with its draws and as a
spec-ready JSON case."""

from __future__ import annotations

import re

import pytest

from tests.meta.test_broken_adapters import DEPTH, GENERATED_ONLY, outcome, run_suite

ONLY_GENERATED = GENERATED_ONLY
#: The fixed cases of the verb each adapter breaks: the conventions' for the general convolution, every
#: other for the chapter's conv2d.
FIXED = {"Conv2dPartialTile": "not conventions and not generated"}


@pytest.mark.parametrize("adapter", ONLY_GENERATED)
def test_the_fixed_cases_miss_it(adapter):
    result = run_suite(f"tests.meta.broken:{adapter}", "-k", FIXED.get(adapter, "conventions and not generated"))
    counts = outcome(result)
    assert "failed" not in counts and counts.get("passed", 0) > 100, result.stdout[-3000:]


@pytest.mark.parametrize("adapter", ONLY_GENERATED)
def test_a_generated_case_finds_it_and_shrinks_it(adapter):
    # One target: shrinking runs per target, and what is shown here (found, shrunk, printed) is per target.
    result = run_suite(f"tests.meta.broken:{adapter}", "-k", "test_generated and float64 and not fast", "--tb=short",
                       *DEPTH, shrink=True)
    out = result.stdout
    assert result.returncode == 1 and outcome(result).get("failed", 0) >= 1, out[-3000:]
    assert re.search(r"Falsifying example|Failing test case", out), out[-3000:]
    assert re.search(r"Draw 1 \((geometry|H)\)", out), out[-3000:]
    assert "as a spec case (add under spec/cases/ as a fixed regression):" in out
    assert re.search(r'\{"id": "generated_regression", "kind": "(general|correlation)".*"expected": ', out), out[-3000:]
    assert "reproduce: pytest 'tests/test_generated.py::test_generated_" in out


def test_the_generated_draws_are_the_same_every_run():
    """Derandomized: two runs draw the same examples (the report compares backends on identical inputs,
    and a failure replays from its test id)."""
    runs = [run_suite("tests.meta.broken:WrongPastTile", "-k", "test_generated_conv_matches_the_oracle and float64",
                      "--tb=short", shrink=True) for _ in range(2)]
    draws = [re.findall(r"Draw \d+ \(.*", r.stdout) for r in runs]
    assert draws[0] and draws[0] == draws[1], [r.stdout[-2000:] for r in runs]


def test_a_missing_verb_does_not_stop_the_chapter_property_checking_the_others():
    """Without a manifest, a chapter verb that raises NotImplementedError skips; the property still
    checks the verbs that are there (here a conv2d wrong for outputs 9-11 wide)."""
    result = run_suite("tests.meta.broken:NoManifestNoCorr2dPartialTile", "-k",
                       "test_generated_corr2d and float64 and not fast", "--tb=line")
    assert result.returncode == 1 and outcome(result).get("failed") == 1, result.stdout[-3000:]
    assert "conv2d on a generated case (NoManifestNoCorr2dPartialTile-cpu-float64)" in result.stdout
