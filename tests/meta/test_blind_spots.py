"""No blind spots: no check depends on assert rewriting, and none is written so
that NaN could pass it.  (The broken adapters that prove each check fails are
in the catalogue: NaNLosses, LearnOverwritesY, ReceptiveFieldOverwritesK1,
IgnoresSeed, SameStartForEverySeed, SeedsTheGlobalGenerator, LeavesErrstate,
SetsEnvironment.)"""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

from tests.meta.test_broken_adapters import ROOT

#: The suite's own code that decides conformance (the meta-tests may assert).
CHECKING = sorted([*(ROOT / "tests").glob("*.py"), ROOT / "conftest.py", *(ROOT / "spec").glob("*.py"),
                   *(ROOT / "report").glob("*.py")])


@pytest.mark.parametrize("path", CHECKING, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_check_is_a_bare_assert(path):
    """``python -O`` removes assert statements: a check written as one would pass everything."""
    asserts = [node.lineno for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Assert)]
    assert not asserts, f"{path.relative_to(ROOT)}: assert statements at lines {asserts}; use support.check"


@pytest.mark.parametrize("path", CHECKING, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_comparison_with_a_bound_is_written_so_that_nan_passes(path):
    """``err > bound`` is False for NaN: a failure test must be written ``not err <= bound``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare) and any(isinstance(op, ast.Gt | ast.GtE) for op in node.ops):
            text = ast.unparse(node)
            if any(word in text for word in ("tol", "bound")):
                found.append(f"{node.lineno}: {text}")
    assert not found, f"{path.relative_to(ROOT)}: {found}"


@pytest.mark.parametrize("adapter, words", [
    ("BiasNotRegistered", "registers parameters {'weight': (1, 2)} with the module system"),
    ("WrongGradient", "dZ/dX"),
])
def test_checks_hold_under_python_O_and_plain_asserts(adapter, words):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONV_CONFORMANCE_")}
    result = subprocess.run(
        [sys.executable, "-O", "-m", "pytest", str(ROOT / "tests"), "--ignore", str(ROOT / "tests" / "meta"),
         f"--backend=tests.meta.broken:{adapter}", "--device=cpu", "--assert=plain", "-p", "no:cacheprovider",
         "-q", "--tb=line"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1 and words in result.stdout, result.stdout[-3000:]
    assert f"verdict: {adapter}: NOT CONFORMANT" in result.stdout
