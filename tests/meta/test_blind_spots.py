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

import numpy as np
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


# -- the spec separates each plausible mistake from the right answer ----------

def _correlation_mistakes(X, K, b):
    """For one correlation case: every plausible mistake's output, by name."""
    from spec import oracle

    bias = b or 0.0
    out = {"convolution (kernel flipped)": oracle.corr2d(X, K[::-1, ::-1], bias),
           "kernel flipped left-right": oracle.corr2d(X, K[:, ::-1], bias),
           "kernel flipped upside-down": oracle.corr2d(X, K[::-1, :], bias),
           "one row short": oracle.corr2d(X, K, bias)[:-1], "one column short": oracle.corr2d(X, K, bias)[:, :-1],
           "'SAME' padding": np.zeros(X.shape), "a mean instead of a sum over the window":
               oracle.corr2d(X, K, bias) / K.size}
    if K.shape[0] == K.shape[1]:
        out["kernel transposed"] = oracle.corr2d(X, K.T, bias)
    else:
        side = K.shape[0]  # the shape alone is what separates it
        out["kernel handled as square"] = np.zeros((max(X.shape[0] - side + 1, 0), max(X.shape[1] - side + 1, 0)))
    if b is not None:
        out["bias ignored"] = oracle.corr2d(X, K)
        out["bias added twice"] = oracle.corr2d(X, K, 2 * bias)
    return out


def _separated(wrong: np.ndarray, right: np.ndarray, tol: np.ndarray) -> bool:
    return wrong.shape != right.shape or bool(np.any(np.abs(wrong - right) > tol))


def test_every_correlation_mistake_is_separated_by_some_case():
    """For each verb's plausible mistakes, at least one spec case gives a different answer beyond its
    float64 tolerance: no mistake can hide behind the cases chosen."""
    import spec

    correlation = [c for s in spec.SECTIONS for c in spec.cases(s) if c.kind == "correlation" and "conv2d" in c.ops]
    for ops, cases in (("corr2d/conv2d/corr2d_matmul", correlation),
                       ("conv2d_layer", [c for c, _ in spec.by_op("conv_layer")])):
        assert not _unseparated(cases), f"{ops}: no case separates {sorted(_unseparated(cases))}"


def test_the_separation_audit_can_fail():
    """On the transposed edge image alone (an all-zero output) most mistakes hide: the audit says so."""
    import spec

    hidden = _unseparated([spec.find("edge_6x8_transposed")])
    assert {"convolution (kernel flipped)", "kernel flipped left-right", "kernel flipped upside-down",
            "a mean instead of a sum over the window"} <= hidden, hidden


def _unseparated(cases) -> set[str]:
    """The mistakes that no case of ``cases`` tells from the right answer."""
    import spec

    unseparated = None
    for case in cases:
        exp = spec.expectation(case, "float64")
        mistakes = _correlation_mistakes(case.input("X"), case.input("K"), case.bias)
        unseparated = (set(mistakes) if unseparated is None else unseparated) & {
            name for name, wrong in mistakes.items() if not _separated(wrong, exp.expected, exp.tolerance)}
    return unseparated or set()


def test_every_receptive_field_mistake_is_separated_by_some_case():
    import spec
    from spec import oracle

    names = set()
    for case in spec.cases("receptive_field"):
        X, K1, K2 = (case.input(n) for n in ("X", "K1", "K2"))
        right = case.array("expected", "grad_z")
        z = (X.shape[0] - K1.shape[0] - K2.shape[0] + 2) * (X.shape[1] - K1.shape[1] - K2.shape[1] + 2)
        Y = oracle.corr2d(X, K1)
        wrong = {"gradient of Z.mean()": right / z,
                 "gradient of Y.sum() (first layer only)": oracle.corr2d_input_grad(X.shape, K1, np.ones(Y.shape)),
                 "K2 flipped in the backward pass": oracle.corr2d_input_grad(
                     X.shape, K1, oracle.corr2d_input_grad(Y.shape, K2[::-1, ::-1],
                                                           np.ones(oracle.corr2d(Y, K2).shape))),
                 "K1 transposed": oracle.corr2d_input_grad(X.shape, K1.T, oracle.corr2d_input_grad(
                     Y.shape, K2, np.ones(oracle.corr2d(Y, K2).shape))) if K1.shape[0] == K1.shape[1] else None}
        names |= {n for n, w in wrong.items()
                  if w is not None and (w.shape != right.shape or not np.array_equal(w, right))}
    expected = {"gradient of Z.mean()", "gradient of Y.sum() (first layer only)", "K2 flipped in the backward pass",
                "K1 transposed"}
    assert names == expected, f"no receptive-field case separates {sorted(expected - names)}"


def test_every_learning_mistake_is_separated_by_the_learning_case():
    import spec
    from spec import learning
    from tests.test_learning_kernel import simulate

    for case in spec.cases("learning_kernel"):
        X, Y, W0 = case.input("X"), case.input("Y"), case.array("initial")
        lr, steps, c = case.data["lr"], case.data["steps"], case.data["tolerance"]["c"]
        ref = learning.replay(X, Y, W0, lr=lr, steps=steps)
        bounds = learning.bounds(X, Y, ref, lr=lr, dtype="float32", c=c)  # the loosest bound it is held to
        late = learning.replay(X, Y, W0, lr=lr, steps=steps + 1)
        mistakes = {"mean loss": learning.replay(X, Y, W0, lr=lr / Y.size, steps=steps).losses / Y.size,
                    "losses a step late": late.losses[1:],
                    "true convolution": simulate(X, Y, W0, lr=lr, steps=steps, flip=True)[0],
                    "a bias": simulate(X, Y, W0, lr=lr, steps=steps, bias=True)[0],
                    "accumulated gradients": simulate(X, Y, W0, lr=lr, steps=steps, accumulate=True)[0],
                    "a third of the learning rate": learning.replay(X, Y, W0, lr=lr / 3, steps=steps).losses}
        hidden = [n for n, losses in mistakes.items() if np.all(np.abs(losses - ref.losses) <= bounds.losses)]
        assert not hidden, f"{case.id}: the trajectory bound does not separate {hidden}"
