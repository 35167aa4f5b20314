"""The error model: unit roundoff, the gamma bound, rounding to a dtype.

For a window of ``k`` products, any summation order, Higham (Accuracy and
Stability of Numerical Algorithms, 2nd ed., Lemma 3.1 and eq. 3.5) bounds the
error of a computed dot product by

    |fl(x.y) - x.y| <= gamma_k * (|x| . |y|),   gamma_k = k*u / (1 - k*u),

with ``u`` the unit roundoff of the dtype the sums are rounded in.  The spec's
tolerance for one output element of a cross-correlation is

    c * gamma_n * (|X| ⋆ |K| + |b|)[i, j],   n = k + 1 (+1 with a bias),

where the extra term covers one final rounding: of the result to the output
dtype when the framework accumulates in a wider one, or of the float64 oracle
itself.  ``c`` is written next to each case (1 for the rigorous bound).
"""

from __future__ import annotations

import numpy as np

#: Significand bits (including the implicit one) per dtype.  ``tfloat32`` is
#: not a storage dtype but the arithmetic of NVIDIA's TensorFloat-32 mode:
#: float32 operands rounded to 11 significant bits, their products (22 bits)
#: exact in float32, and the sums accumulated in float32.  Its error on a
#: window of n-1 products plus one rounding is at most
#: ``(1+2**-11)**2 * (1+gamma_n(float32)) - 1 <= gamma_n(tfloat32)`` for n >= 2,
#: so the float32 rule with TF32's unit roundoff bounds it.
PRECISION_BITS = {"float16": 11, "bfloat16": 8, "float32": 24, "float64": 53, "tfloat32": 11}

#: NumPy container for arrays of each dtype (NumPy has no bfloat16: its values
#: travel exactly in float32).
CONTAINER = {"float16": np.float16, "bfloat16": np.float32, "float32": np.float32, "float64": np.float64}


def arithmetic(dtype: str, precision: str) -> str:
    """The format whose rounding bounds a result's error: ``dtype``, except
    float32 in the fast precision mode, which may run as TF32."""
    return "tfloat32" if precision == "fast" and dtype == "float32" else dtype


def unit_roundoff(dtype: str) -> float:
    """``u = 2**-p``: half the distance from 1 to the next number."""
    return 2.0 ** -PRECISION_BITS[dtype]


def gamma(n: int, dtype: str) -> float:
    """Higham's ``gamma_n = n*u / (1 - n*u)``."""
    nu = n * unit_roundoff(dtype)
    if nu >= 1:
        raise ValueError(f"gamma_{n} undefined for {dtype}: n*u = {nu} >= 1")
    return nu / (1 - nu)


def round_to(a: np.ndarray, dtype: str) -> np.ndarray:
    """``a`` rounded to nearest (ties to even) in ``dtype``, held in float64."""
    a = np.asarray(a, dtype=np.float64)
    if dtype in ("bfloat16", "tfloat32"):  # no NumPy container of their own
        mantissa, exponent = np.frexp(a)  # mantissa in [0.5, 1)
        bits = PRECISION_BITS[dtype]
        return np.ldexp(np.rint(mantissa * 2.0**bits) / 2.0**bits, exponent)
    return a.astype(CONTAINER[dtype]).astype(np.float64)


def container(a: np.ndarray, dtype: str) -> np.ndarray:
    """``a`` rounded to ``dtype``, in the NumPy array type that carries it exactly."""
    return round_to(a, dtype).astype(CONTAINER[dtype])


def exactly_representable(a: np.ndarray, dtype: str) -> bool:
    return bool(np.array_equal(round_to(a, dtype), np.asarray(a, dtype=np.float64)))


def _dyadic_exponent(a: np.ndarray, limit: int = 64) -> int | None:
    """Smallest ``m`` with every entry of ``a * 2**m`` an integer, or None."""
    for m in range(limit):
        scaled = np.asarray(a, dtype=np.float64) * 2.0**m
        if np.array_equal(scaled, np.round(scaled)):
            return m
    return None


def rounding_free(magnitude: np.ndarray, X: np.ndarray, K: np.ndarray, b: float, dtype: str) -> bool:
    """True when ``X ⋆ K + b`` cannot round at all in ``dtype``, in any order.

    If ``X`` and ``K`` are integer multiples of ``2**-mx`` and ``2**-mk`` and
    ``b`` of ``2**-mb``, every product and partial sum is an integer multiple of
    ``2**-m`` with ``m = max(mx + mk, mb)``, and bounded in size by the largest
    ``(|X| ⋆ |K| + |b|)`` entry.  If that bound times ``2**m`` is at most
    ``2**p``, each such number has at most ``p`` significant bits: the dtype holds
    it exactly, and no operation rounds.  (Integer data is ``m = 0``; the
    binomial blur's sixteenths are ``m = 4``.)
    """
    exps = [_dyadic_exponent(a) for a in (X, K, np.array([b]))]
    if None in exps:
        return False
    mx, mk, mb = exps
    m = max(mx + mk, mb)
    return float(np.max(magnitude, initial=0.0)) * 2.0**m <= 2.0 ** PRECISION_BITS[dtype]
