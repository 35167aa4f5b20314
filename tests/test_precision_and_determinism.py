"""Precision modes and determinism, per target.

* The adapter's :meth:`numerics` restores every setting it reports even when
  the test inside raises, and in the fast mode leaves the framework's float32
  defaults alone.  (Every other test also checks the restore, in the autouse
  ``_numerics`` fixture of ``conftest.py``.)
* The repeat check: the built-in op forward, and the gradients of two stacked
  cross-correlations backward (where GPU libraries use atomics), each run twice
  on seeded random values, must give the same bits wherever the adapter
  promises determinism (:meth:`Backend.determinism`).  Where it does not, a
  difference is reported in the verdict and the record instead of failing at
  random.
"""

from __future__ import annotations

import numpy as np
import pytest

import spec
from tests import support

RANDOM = spec.find("random_7x9_k3x3")  # seeded uniform(-1, 1): every sum rounds, so order shows


class _Inside(Exception):
    pass


def test_numerics_restores_after_an_error(target):
    bk = target.backend
    for precision in ("strict", "fast"):
        before = bk.precision_settings()
        with pytest.raises(_Inside):
            with bk.numerics(target.device, target.dtype, precision):
                inside = bk.precision_settings()
                raise _Inside
        leaked = support.settings_changed(before, bk.precision_settings())
        support.check(not leaked, f"{bk.label}.numerics(..., {precision!r}) left settings changed after an "
                      f"exception: {leaked}")
        if precision == "fast" and target.dtype == "float32":
            changed = support.settings_changed(before, inside)
            support.check(not changed, f"fast mode should keep the framework's defaults, but changed {changed}")


def _bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).tobytes()


def test_repeat_gives_same_bits(target):
    bk = target.backend
    exp = spec.expectation(RANDOM, target.dtype, target.arithmetic)
    X, K = target.asarray(exp.X), target.asarray(exp.K)
    runs = {"conv2d forward": [support.call(bk, "conv2d", X, K) for _ in range(2)]}
    grads = [support.call(bk, "receptive_field", X, K, K) for _ in range(2)]
    runs["receptive_field backward"] = [g[0] for g in grads]
    differs = []
    for what, (a, b) in runs.items():
        a, b = (support.read_result(target, r, what=what) for r in (a, b))
        if _bits(a) != _bits(b):
            differs.append(f"{what}: {int(np.sum(a != b))} of {a.size} values differ, max |diff| "
                           f"{float(np.max(np.abs(a - b))):.3g}")
    promise = bk.determinism(target.device, target.precision)
    if not differs:
        support.note(determinism="repeatable" + ("" if promise is None else f" here, though not promised: {promise}"))
        return
    if promise is None:
        pytest.fail(f"{target.id}: the same computation run twice gave different bits, although "
                    f"{bk.label} promises determinism in {target.precision} mode on {target.device}: "
                    + "; ".join(differs), pytrace=False)
    support.note(determinism=f"not repeatable ({'; '.join(differs)}); not promised: {promise}")
