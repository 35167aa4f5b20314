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


def simulate(X, Y, W0, *, lr: float, steps: int, flip: bool = False, bias: bool = False,
             accumulate: bool = False, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """A variant of the book's loop, for naming mistakes: ``(losses, final kernel)``.

    ``flip``: the layer computes a true convolution (Flux's ``Conv``), ``corr(X, W[::-1, ::-1])``.
    ``bias``: the layer also has a bias, starting at 0 and trained.  ``accumulate``: gradients are
    never zeroed, so each step uses the sum of all gradients so far.  ``dtype``: the arithmetic.
    """
    t = np.dtype(dtype).type
    X, Y, W, lr = X.astype(dtype), Y.astype(dtype), W0.astype(dtype), t(lr)
    c, gW, gc = t(0), np.zeros_like(W), t(0)
    losses = np.zeros(steps, dtype=dtype)
    for i in range(steps):
        K = W[::-1, ::-1] if flip else W
        windows = np.lib.stride_tricks.sliding_window_view(X, K.shape)
        r = np.einsum("ijkl,kl->ij", windows, K) + c - Y
        losses[i] = (r * r).sum()
        dK = 2 * np.einsum("ijkl,ij->kl", windows, r)
        dW, dc = (dK[::-1, ::-1] if flip else dK), 2 * r.sum()
        gW, gc = (gW + dW, gc + dc) if accumulate else (dW, dc)
        W, c = W - lr * gW, (c - lr * gc if bias else c)
    return losses.astype(np.float64), W.astype(np.float64)


def explain(loop: Loop, target, W0, losses, W, ref: learning.Replay) -> str:
    """Name every usual mistake whose trajectory this one follows (or say that none does)."""
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
    late = learning.replay(X, Y, W0, lr=LR, steps=STEPS + 1)
    variants = {
        "the losses are recorded one step late (after each update, not before it)":
            (late.losses[1:], late.kernels[STEPS]),
        "the layer computes a true convolution (a flipped kernel, as Flux's Conv), not a cross-correlation":
            simulate(X, Y, W0, lr=LR, steps=STEPS, flip=True),
        "the layer has a bias (trained from 0), where the book's loop has none":
            simulate(X, Y, W0, lr=LR, steps=STEPS, bias=True),
        "the gradients accumulate across steps (never zeroed between them)":
            simulate(X, Y, W0, lr=LR, steps=STEPS, accumulate=True),
    }
    names = [name for name, (alt_losses, alt_W) in variants.items()
             if np.allclose(losses, alt_losses, rtol=1e-4, atol=1e-9) and np.allclose(W, alt_W, rtol=1e-4, atol=1e-9)]
    if target.arithmetic == "float64":
        bound32 = learning.bounds(X, Y, ref, lr=LR, dtype="float32", c=loop.C)
        if np.all(np.abs(losses - ref.losses) <= bound32.losses) and \
                np.linalg.norm(W - ref.kernels[-1]) <= bound32.kernel:
            names.append("float32 arithmetic in a float64 run (within float32's bound, outside float64's)")
    first = float(late.losses[0])  # the loss of the reported initial kernel
    if not np.isclose(losses[0], first, rtol=1e-4, atol=1e-9) and not names:
        names.append(f"a different start than reported (the first loss {losses[0]:.6g} is not the loss "
                     f"{first:.6g} of the reported initial kernel)")
    if names:
        return support.fits(names)
    lr = fitted_learning_rate(X, Y, W0, losses, steps=STEPS, lr=LR)
    if lr is not None:
        return f"; the steps follow a learning rate of {lr:.4g} ({lr / LR:.4g} x the spec's {LR})"
    return ("; losses and kernel drift from the exact trajectory, and fit none of the usual mistakes (another loss "
            "convention or learning rate, losses a step late, a flipped layer, a bias, accumulated gradients, "
            "float32 arithmetic, another start)")


def fitted_learning_rate(X, Y, W0, losses, *, steps: int, lr: float) -> float | None:
    """The learning rate (between lr/1000 and 1000 lr) whose exact trajectory the losses follow, if any."""
    def misfit(log_lr: float) -> float:
        alt = learning.replay(X, Y, W0, lr=float(np.exp(log_lr)), steps=steps).losses
        return float(np.max(np.abs(alt - losses) / np.maximum(np.abs(losses), 1e-12)))

    with np.errstate(all="ignore"):
        grid = np.linspace(np.log(lr) - np.log(1000), np.log(lr) + np.log(1000), 241)
        i = int(np.nanargmin([misfit(g) for g in grid]))
        a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        golden = (np.sqrt(5) - 1) / 2
        for _ in range(80):  # golden-section search between the best grid point's neighbours
            c, d = b - golden * (b - a), a + golden * (b - a)
            a, b = (a, d) if misfit(c) < misfit(d) else (c, b)
        best = (a + b) / 2
        return float(np.exp(best)) if misfit(best) <= 1e-4 and not np.isclose(np.exp(best), lr, rtol=1e-3) else None


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
            f"{what}: trajectory leaves its error bound{explain(loop, target, W0, losses, W, ref)}\n"
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
    if not end <= bound:
        support.check(False, (
            f"|W_10 - K| = {end:.6g} exceeds {rho}**{STEPS} * |W_0 - K| + float slack = {bound:.6g} "
            f"(start {W0.ravel().tolist()}, end {W.ravel().tolist()}): each step must contract the error by "
            f"{rho}{explain(loop, train_target, W0, losses, W, ref)}"))


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
