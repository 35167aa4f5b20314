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


# -- diagnoses that name every mistake that fits, and none that does not -----


def test_same_padding_with_a_1xN_kernel_names_both_mistakes_that_fit():
    from tests.support import describe_shape

    said = describe_shape((6, 8), (6, 7), input_shape=(6, 8), kernel_shape=(1, 2))
    assert "'SAME' padding where 'VALID' is meant" in said and "the 1x2 kernel handled as 1x1" in said, said
    assert "these inputs cannot tell them apart" in said


def test_one_column_short_with_a_3x2_kernel_is_not_only_a_square_kernel():
    from tests.support import describe_shape

    said = describe_shape((3, 5), (3, 6), input_shape=(5, 7), kernel_shape=(3, 2))
    assert "1 column short" in said and "handled as 3x3" in said and "off-by-one in the output width" in said, said


def test_a_mistake_the_inputs_cannot_separate_is_named_with_its_twin():
    """On Fig. 7.2.1's ramp a left-right flip and a transpose give the same output: both are named there,
    and the seeded random cases, which separate them, name the flip alone."""
    result = _run("LeftRightFlippedKernel", "-k", "float64")
    fig = [line for line in result.stdout.splitlines() if "on fig_7_2_1 (" in line and "outside tolerance" in line]
    assert fig and all("kernel looks transposed" in line and "flipped left-right" in line for line in fig), fig
    rnd = [line for line in result.stdout.splitlines() if "on random_7x9_k3x3 (" in line]
    assert rnd and all("flipped left-right" in line and "transposed" not in line for line in rnd), rnd


@pytest.mark.parametrize("adapter", ["ConstantOffset", "BiasMissingFromOneRow"])
def test_an_error_that_is_not_rounding_is_not_called_rounding(adapter):
    result = _run(adapter)
    assert result.returncode == 1, result.stdout[-2000:]
    for claim in ("values agree only to", "narrower formats fit"):
        assert claim not in result.stdout, result.stdout[-3000:]


def _run(adapter: str, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONV_CONFORMANCE_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "tests"), "--ignore", str(ROOT / "tests" / "meta"),
         f"--backend=tests.meta.broken:{adapter}", "--device=cpu", "-p", "no:cacheprovider", "-q", "--tb=line",
         *extra], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
