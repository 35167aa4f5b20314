"""7.2.4 Learning a Kernel: the book's loop (built-in conv layer, no bias, sum
of squared errors, plain gradient descent, lr 3e-2, 10 steps) under three
checks: a float64 replay from the layer's own initial weights, the stored
per-step losses from a fixed start, and the contraction bound
``|W_10 - K| <= 0.8**10 |W_0 - K|``.  Derivations: ``spec/learning.py``."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pytest

import spec
from spec import learning
from tests import support

CASES = spec.cases("learning_kernel")


@dataclass(frozen=True)
class Loop:
    """One learning case: input, target output, the kernel to learn, step size, steps, slack factor."""

    case: spec.Case

    @functools.cached_property
    def X(self) -> np.ndarray:
        return self.case.input("X")

    @functools.cached_property
    def Y(self) -> np.ndarray:
        return self.case.input("Y")

    @functools.cached_property
    def TARGET(self) -> np.ndarray:
        return self.case.array("target")

    @property
    def LR(self) -> float:
        return self.case.data["lr"]

    @property
    def STEPS(self) -> int:
        return self.case.data["steps"]

    @property
    def C(self) -> float:
        return self.case.data["tolerance"]["c"]


@pytest.fixture(params=CASES, ids=lambda c: c.id)
def loop(request) -> Loop:
    return Loop(request.param)


def train(target, loop: Loop, initial: np.ndarray | None, seed: int | None = None):
    """Run the adapter's loop; return (W0, losses, W_final) as float64 NumPy."""
    bk = target.backend
    seed = loop.case.data["seed"] if seed is None else seed
    X, Y, TARGET, LR, STEPS = loop.X, loop.Y, loop.TARGET, loop.LR, loop.STEPS
    traj = support.call(
        bk, "learn_kernel", target.asarray(X), target.asarray(Y), kernel_size=TARGET.shape, lr=LR, steps=STEPS,
        initial=None if initial is None else target.asarray(initial), seed=seed)
    W0 = support.read_result(target, traj.initial, what="initial kernel")
    losses = support.read_result(target, traj.losses, what="losses")
    W = support.read_result(target, traj.kernel, what="learned kernel")
    for name, got, shape in (("initial kernel", W0, TARGET.shape), ("losses", losses, (STEPS,)),
                             ("learned kernel", W, TARGET.shape)):
        if got.shape != shape:
            pytest.fail(f"{name}: shape {got.shape}, expected {shape}", pytrace=False)
    return W0, losses, W


def explain(loop: Loop, W0, losses, ref: learning.Replay) -> str:
    """Name the usual mistakes: the loss convention, the step size."""
    X, Y, LR, STEPS = loop.X, loop.Y, loop.LR, loop.STEPS
    conventions = ((1 / Y.size, "the mean of the squared errors (torch's MSELoss default)"),
                   (1 / (2 * Y.size), "half the mean (DJL's L2Loss)"), (0.5, "half the sum"))
    if ref.losses[0] > 0:
        ratio = losses[0] / ref.losses[0]
        for factor, name in conventions:
            if np.isclose(ratio, factor, rtol=1e-3):
                return f"; the first loss is {ratio:.4g} x the sum of squared errors: the loop uses {name}, not the sum"
    for factor, name in conventions:
        alt = learning.replay(X, Y, W0, lr=LR * factor, steps=STEPS)
        if np.allclose(losses, alt.losses, rtol=1e-3):
            return f"; the steps follow the gradient of {name}, not of the sum"
    return "; losses and kernel drift from the exact trajectory (wrong learning rate, or a wrong gradient?)"


def check_trajectory(target, loop: Loop, W0, losses, W, ref: learning.Replay, what: str):
    __tracebackhide__ = True
    X, Y, LR, STEPS, C = loop.X, loop.Y, loop.LR, loop.STEPS, loop.C
    bounds = learning.bounds(X, Y, ref, lr=LR, dtype=target.arithmetic, c=C)
    loss_err = np.abs(losses - ref.losses)
    kernel_err = float(np.linalg.norm(W - ref.kernels[-1]))
    support.note(max_abs_error=float(max(loss_err.max(), kernel_err)),
                 max_tolerance_units=float(max(np.max(loss_err / bounds.losses), kernel_err / bounds.kernel)))
    bad = np.flatnonzero(~(loss_err <= bounds.losses))  # NaN-safe: NaN is outside every bound
    if bad.size or not kernel_err <= bounds.kernel:
        step = int(bad[0]) if bad.size else STEPS - 1
        pytest.fail(
            f"{what}: trajectory leaves its error bound{explain(loop, W0, losses, ref)}\n"
            f"  loss at step {step}: got {losses[step]!r}, expected {ref.losses[step]!r} "
            f"(|error| {loss_err[step]:.3g}, bound {bounds.losses[step]:.3g})\n"
            f"  final kernel: got {W.ravel().tolist()}, expected {ref.kernels[-1].ravel().tolist()} "
            f"(|error| {kernel_err:.3g}, bound {bounds.kernel:.3g})\n"
            f"  losses got:      {np.array2string(losses, precision=6)}\n"
            f"  losses expected: {np.array2string(ref.losses, precision=6)}", pytrace=False)


def test_replay_from_own_initialisation(train_target, loop):
    W0, losses, W = train(train_target, loop, None)
    ref = learning.replay(loop.X, loop.Y, W0, lr=loop.LR, steps=loop.STEPS)
    check_trajectory(train_target, loop, W0, losses, W, ref, "from the layer's own initial weights")


def test_losses_from_fixed_start(train_target, loop):
    initial = loop.case.array("initial")
    W0, losses, W = train(train_target, loop, initial)
    if not np.array_equal(W0, initial):
        pytest.fail(f"the initial kernel {initial.tolist()} was not loaded: the layer starts from {W0.tolist()}",
                    pytrace=False)
    # Compare with the losses stored in the spec; the bound also needs the kernels between steps.
    kernels = learning.replay(loop.X, loop.Y, initial, lr=loop.LR, steps=loop.STEPS).kernels
    ref = learning.Replay(kernels, loop.case.array("expected", "losses"))
    support.note(**{"output:losses": losses, "output:kernel": W})  # for the cross-framework comparison
    check_trajectory(train_target, loop, W0, losses, W, ref, "from the spec's fixed initial kernel")


def test_contraction_bound(train_target, loop):
    W0, losses, W = train(train_target, loop, None)
    X, Y, LR, STEPS, C, TARGET = loop.X, loop.Y, loop.LR, loop.STEPS, loop.C, loop.TARGET
    rho = loop.case.data["contraction"]
    ref = learning.replay(X, Y, W0, lr=LR, steps=STEPS)
    slack = learning.bounds(X, Y, ref, lr=LR, dtype=train_target.arithmetic, c=C).kernel
    start, end = float(np.linalg.norm(W0 - TARGET)), float(np.linalg.norm(W - TARGET))
    bound = rho**STEPS * start + slack
    support.check(end <= bound, (
        f"|W_10 - K| = {end:.6g} exceeds {rho}**{STEPS} * |W_0 - K| + float slack = {bound:.6g} "
        f"(start {W0.ravel().tolist()}, end {W.ravel().tolist()}): each step must contract the error by 0.8; "
        "a mean or half-mean loss, or a smaller learning rate, contracts far less"))


def test_seed_decides_the_start(train_target, loop):
    """``initial=None, seed=s``: the same seed twice gives the same start, bit for bit (and the same
    trajectory where the adapter promises determinism); another seed gives another start."""
    seed, bk = loop.case.data["seed"], train_target.backend
    first, again, other = (train(train_target, loop, None, seed=s) for s in (seed, seed, seed + 1))
    names = ("initial kernel", "losses", "learned kernel")
    repeatable = bk.determinism(train_target.device, train_target.precision) is None
    for name, a, b in list(zip(names, first, again, strict=True))[:3 if repeatable else 1]:
        support.check(np.array_equal(a, b), f"learn_kernel(seed={seed}) twice gave different {name}s: "
                      f"{a.ravel().tolist()} then {b.ravel().tolist()} (the seed is not what seeds the "
                      "layer's initialisation, or a global generator is drawn from without it)")
    support.check(not np.array_equal(first[0], other[0]),
                  f"learn_kernel(seed={seed}) and learn_kernel(seed={seed + 1}) start from the same kernel "
                  f"{first[0].ravel().tolist()}: the seed is ignored (a fixed start)")
