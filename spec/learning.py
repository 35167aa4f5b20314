"""Kernel learning (section 7.2.4): the float64 replay and its error bound.

The loss ``L(w) = sum((X ⋆ w - Y)**2)`` is quadratic in the kernel ``w``.
Write ``A`` for the matrix with ``A @ vec(w) = vec(X ⋆ w)``; since ``Y = X ⋆ K``
exactly, ``L(w) = |A e|²`` with ``e = w - K``, and one gradient-descent step is

    e  <-  (I - 2·lr·AᵀA) e  =  M e.

For the book's edge pair, ``AᵀA = [[18, 12], [12, 18]]`` (eigenvalues 30 and
6), so at ``lr = 3e-2`` the eigenvalues of ``M`` are ``1 - 0.06·30 = -0.8`` and
``1 - 0.06·6 = 0.64``: ``M`` is symmetric with spectral radius ``rho = 0.8``, and
``|W_10 - K| <= 0.8**10 · |W_0 - K|`` (0.107...).  A loop that averages the
squared errors scales ``lr`` by 1/42 (``rho`` becomes 0.991), half-averaging by
1/84: either stays far outside the bound.

Float error of a computed trajectory (first order in ``u``; see docs/conventions.md):
with ``e_t`` the distance from the exact trajectory from the same start,

    e_{t+1} <= rho · e_t + |delta_t|,
    delta_t  = u·(|w_t| + 2·lr·|g_t|) + lr·Δg_t,
    Δg_t     = 2·(gamma_N · (|X| ⋆ |r_t|) + |X| ⋆ Δr_t),
    Δr_t     = gamma_{k+1} · (|X| ⋆ |w_t| + |Y|),

with ``k`` kernel entries, ``N`` output pixels and ``r_t = X ⋆ w_t - Y``.  The
loss at step ``t`` then errs by at most
``2|r_t||A|e_t + |A|²e_t² + gamma_N·L_t + 2·|r_t|·Δr_t + |Δr_t|²``.
The spec's ``c = 2`` doubles these first-order bounds to cover the neglected
terms of order ``u²``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spec.numerics import gamma, unit_roundoff


def _corr(X: np.ndarray, K: np.ndarray) -> np.ndarray:
    windows = np.lib.stride_tricks.sliding_window_view(X, K.shape)
    return np.einsum("ijkl,kl->ij", windows, K)


def design_matrix(X: np.ndarray, kernel_size: tuple[int, int]) -> np.ndarray:
    """``A`` with ``A @ w.ravel() == (X ⋆ w).ravel()``."""
    kh, kw = kernel_size
    cols = []
    for a in range(kh):
        for c in range(kw):
            cols.append(X[a:X.shape[0] - kh + 1 + a, c:X.shape[1] - kw + 1 + c].ravel())
    return np.stack(cols, axis=1)


def contraction(X: np.ndarray, kernel_size: tuple[int, int], lr: float) -> float:
    """Spectral radius (= 2-norm, M is symmetric) of one step's linear map."""
    A = design_matrix(X, kernel_size)
    M = np.eye(A.shape[1]) - 2 * lr * A.T @ A
    return float(np.max(np.abs(np.linalg.eigvalsh(M))))


@dataclass(frozen=True)
class Replay:
    """A float64 replay: ``kernels[t]`` before step ``t``, ``losses[t]`` at it."""

    kernels: np.ndarray  # (steps + 1, kh, kw)
    losses: np.ndarray  # (steps,)


def replay(X: np.ndarray, Y: np.ndarray, W0: np.ndarray, *, lr: float, steps: int) -> Replay:
    """Plain gradient descent on the sum of squared errors, in float64."""
    W = np.asarray(W0, dtype=np.float64)
    kernels, losses = [W], []
    for _ in range(steps):
        r = _corr(X, W) - Y
        losses.append(float((r * r).sum()))
        W = W - lr * (2 * _corr(X, r))
        kernels.append(W)
    return Replay(np.stack(kernels), np.array(losses))


@dataclass(frozen=True)
class Bounds:
    """Tolerances for a trajectory: per-step loss, and the final kernel (2-norm)."""

    losses: np.ndarray
    kernel: float


def bounds(X, Y, ref: Replay, *, lr: float, dtype: str, c: float) -> Bounds:
    """How far a trajectory computed in ``dtype`` may lie from the exact one.

    The float64 replay ``ref`` errs itself by the same bound at float64; both
    are added, so a float64 run is not held to a reference it cannot beat.
    """
    own = _first_order(X, Y, ref, lr=lr, dtype=dtype)
    ref_err = _first_order(X, Y, ref, lr=lr, dtype="float64")
    return Bounds(c * (own.losses + ref_err.losses), c * (own.kernel + ref_err.kernel))


def _first_order(X, Y, ref: Replay, *, lr: float, dtype: str) -> Bounds:
    u = unit_roundoff(dtype)
    kernel_size = ref.kernels.shape[1:]
    A = design_matrix(X, kernel_size)
    norm_A = float(np.linalg.norm(A, 2))
    rho = contraction(X, kernel_size, lr)
    k, n = int(np.prod(kernel_size)), Y.size
    absX = np.abs(X)
    e, loss_tol = 0.0, []
    for t, loss in enumerate(ref.losses):
        w = ref.kernels[t]
        r = _corr(X, w) - Y
        dr = gamma(k + 1, dtype) * (_corr(absX, np.abs(w)) + np.abs(Y))
        loss_tol.append(
            2 * np.linalg.norm(r) * norm_A * e + norm_A**2 * e**2
            + gamma(n, dtype) * loss + 2 * float(np.abs(r).ravel() @ dr.ravel()) + float((dr * dr).sum())
        )
        g = 2 * _corr(X, r)
        dg = 2 * (gamma(n, dtype) * _corr(absX, np.abs(r)) + _corr(absX, dr))
        delta = u * (np.abs(w) + 2 * lr * np.abs(g)) + lr * dg
        e = rho * e + float(np.linalg.norm(delta))
    return Bounds(np.array(loss_tol), e)


def layer_step(X, K, b: float, Y, *, lr: float) -> tuple[np.ndarray, np.ndarray]:
    """One plain gradient step of the book's ``Conv2D`` (weight ``K``, bias ``b``) on the sum of
    squared errors ``sum((corr(X, K) + b - Y)**2)``, in float64: ``(weight, bias)``."""
    r = _corr(X, K) + b - Y
    return K - lr * 2 * _corr(X, r), np.array([b - lr * 2 * r.sum()])


def layer_step_bounds(X, K, b: float, Y, *, lr: float, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Elementwise bounds on ``|computed - exact|`` of :func:`layer_step` in ``dtype``.

    With ``k`` kernel entries, ``n`` output positions and ``R = |X|*|K| + |b| + |Y|``
    (``*`` the correlation), the residual errs by at most ``gamma_{k+2} R`` (k products,
    k+1 additions); the gradient ``2 X*r`` adds a sum of ``n`` terms, so it errs by at most
    ``gamma_{k+n+2} G`` with ``G = 2 |X|*(|r| + R)``; the update ``K - lr g`` adds two more
    roundings: ``gamma_{k+n+4} (|K| + lr G)``.  The bias alike, with ``G_b = 2 sum(|r| + R)``.
    (First order in u; the learning rates of the spec are powers of two, exact in every dtype.)
    """
    r = np.abs(_corr(X, K) + b - Y)
    R = _corr(np.abs(X), np.abs(K)) + abs(b) + np.abs(Y)
    g = gamma(K.size + r.size + 4, dtype)
    return (g * (np.abs(K) + lr * 2 * _corr(np.abs(X), r + R)),
            np.array([g * (abs(b) + lr * 2 * float((r + R).sum()))]))
