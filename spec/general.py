"""The general convolution (d2l 7.3 padding and stride, 7.4 channels; groups and dilation): its
definition, an exact oracle, and the named conventions where frameworks differ.

Definition.  ``X`` is ``(N, C_in, H, W)``, ``K`` is ``(C_out, C_in/groups, kh, kw)`` (the spec's
logical layout, NCHW/OIHW; an adapter maps it onto its framework's own).  A padding mode is *pad
the input, then a VALID strided, dilated cross-correlation*:

1. pads ``((top, bottom), (left, right))``: given explicitly, or ``"valid"`` (none), or ``"same"``
   (TensorFlow's rule, the extra pixel at the end: ``out = ceil(n / s)``, ``total = max((out - 1)
   s + d (k - 1) + 1 - n, 0)``, ``begin = total // 2``), or ``"same_lower"`` (the extra pixel at the
   beginning: ``begin = total - total // 2``);
2. the input padded with those pads in ``padding_mode``: ``zeros``; ``reflect`` (the edge not
   repeated: ``[1, 2, 3]`` -> ``2 | 1 2 3 | 2``, needs pad < n); ``replicate`` (the edge repeated:
   ``1 | 1 2 3 | 3``); ``symmetric`` (mirrored with the edge: ``1 | 1 2 3 | 3``, ``2 1 | 1 2 3 | 3 2``,
   needs pad <= n); ``circular`` (wrapped: ``3 | 1 2 3 | 1``, needs pad <= n);
3. ``Y[b, o, i, j] = sum over c, a, e of Xp[b, g*Cg + c, i*sh + a*dh, j*sw + e*dw] * K[o, c, a, e]``
   for output channel ``o`` of group ``g = o // (C_out / groups)``, ``Cg = C_in / groups``, and
   ``out = floor((n + begin + end - d (k - 1) - 1) / s) + 1`` per axis.

The output grid starts at padded index 0 whatever the mode, so circular padding under a stride is
aligned by its pads alone (flax's CIRCULAR pads ``((k_eff-1)//2, k_eff//2)`` whatever the stride:
the same as explicit pads, not as "same").  The errors that must be errors: a pad too large for its
mode, a negative pad, groups that do not divide both channel counts, a kernel (dilated) larger than
the padded input, a stride or dilation below 1.

Every product and sum is exact (``fractions.Fraction``); expected values are rounded once.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

PADDING_MODES = ("zeros", "reflect", "replicate", "symmetric", "circular")
PADDING_WORDS = ("valid", "same", "same_lower")

#: The named conventions a case can exercise (a case lists those it needs; an adapter says per
#: convention which native option of its framework it uses, or "emulated: ...", or "unsupported: ...").
CONVENTIONS = {
    "valid": "no padding ('VALID')",
    "explicit": "explicit, asymmetric (top, bottom), (left, right) pads",
    "same": "'same', the extra pixel at the end (TensorFlow's rule, ONNX SAME_UPPER)",
    "same_lower": "'same', the extra pixel at the beginning (ONNX SAME_LOWER)",
    "same_strided": "'same' under a stride > 1 (out = ceil(n / s))",
    "stride": "stride > 1 (floor of the output size)",
    "dilation": "dilation > 1",
    "dilation_strided": "dilation > 1 together with stride > 1",
    "channels": "several input and output channels (C_in != C_out), a batch of 2, a non-square kernel",
    "groups": "grouped convolution (groups > 1)",
    "depthwise": "depthwise convolution (groups = C_in, a channel multiplier)",
    "reflect": "reflect padding (edge not repeated)",
    "replicate": "replicate / edge padding",
    "symmetric": "symmetric padding (edge repeated in the mirror)",
    "circular": "circular / wrap padding",
    "gradient": "gradients with respect to input and kernel (the framework's autograd)",
}


class ConvError(ValueError):
    """The parameters are invalid: the convolution must raise."""


def pads(padding, n: tuple[int, int], k: tuple[int, int], stride, dilation) -> tuple[tuple[int, int], ...]:
    """``((top, bottom), (left, right))`` for a padding word or explicit pairs."""
    if isinstance(padding, str):
        if padding not in PADDING_WORDS:
            raise ConvError(f"unknown padding {padding!r}")
        out = []
        for ni, ki, si, di in zip(n, k, stride, dilation, strict=True):
            if padding == "valid":
                out.append((0, 0))
                continue
            size = -(-ni // si)
            total = max((size - 1) * si + di * (ki - 1) + 1 - ni, 0)
            begin = total // 2 if padding == "same" else total - total // 2
            out.append((begin, total - begin))
        return tuple(out)
    result = tuple((int(lo), int(hi)) for lo, hi in padding)
    if len(result) != 2:
        raise ConvError(f"padding needs (top, bottom), (left, right): {padding!r}")
    return result


def _index(i: int, n: int, mode: str) -> int | None:
    """The source index of padded position ``i`` (``-pad <= i < n + pad``); None for a zero."""
    if 0 <= i < n:
        return i
    if mode == "zeros":
        return None
    if mode == "replicate":
        return 0 if i < 0 else n - 1
    if mode == "circular":
        return i % n
    if mode == "reflect":
        return -i if i < 0 else 2 * (n - 1) - i
    if mode == "symmetric":
        return -i - 1 if i < 0 else 2 * n - 1 - i
    raise ConvError(f"unknown padding mode {mode!r}")


def check(x_shape, k_shape, *, stride, dilation, padding, padding_mode, groups) -> tuple:
    """The pads and output shape, or :class:`ConvError` with the rule that is broken."""
    if len(x_shape) != 4 or len(k_shape) != 4:
        raise ConvError(f"X must be (N, C_in, H, W) and K (C_out, C_in/groups, kh, kw): {x_shape}, {k_shape}")
    (nb, cin, h, w), (cout, cg, kh, kw) = x_shape, k_shape
    if padding_mode not in PADDING_MODES:
        raise ConvError(f"unknown padding mode {padding_mode!r}")
    if min(*stride, *dilation) < 1:
        raise ConvError(f"stride {tuple(stride)} and dilation {tuple(dilation)} must be at least 1")
    if groups < 1 or cin % groups or cout % groups:
        raise ConvError(f"groups={groups} must divide both channel counts (C_in={cin}, C_out={cout})")
    if cg != cin // groups:
        raise ConvError(f"K has {cg} input channels per group, but C_in / groups = {cin // groups}")
    p = pads(padding, (h, w), (kh, kw), stride, dilation)
    for (lo, hi), n, axis in zip(p, (h, w), ("height", "width"), strict=True):
        if lo < 0 or hi < 0:
            raise ConvError(f"negative padding {(lo, hi)} on the {axis}")
        if padding_mode == "reflect" and max(lo, hi) >= n:
            raise ConvError(f"reflect padding {(lo, hi)} must be smaller than the {axis} {n}")
        if padding_mode in ("symmetric", "circular") and max(lo, hi) > n:
            raise ConvError(f"{padding_mode} padding {(lo, hi)} must not exceed the {axis} {n}")
    out = []
    for (lo, hi), n, k, s, d in zip(p, (h, w), (kh, kw), stride, dilation, strict=True):
        span = n + lo + hi - d * (k - 1)
        if span < 1:
            raise ConvError(f"the kernel ({k} taps, dilation {d}: {d * (k - 1) + 1} wide) is larger than the padded "
                            f"input ({n + lo + hi})")
        out.append((span - 1) // s + 1)
    return p, (nb, cout, *out)


def pad(X: np.ndarray, p, mode: str) -> np.ndarray:
    """``X`` (N, C, H, W) padded on H and W, as an object array (exact values kept)."""
    (t, b), (le, r) = p
    nb, c, h, w = X.shape
    out = np.empty((nb, c, h + t + b, w + le + r), dtype=object)
    for i in range(h + t + b):
        si = _index(i - t, h, mode)
        for j in range(w + le + r):
            sj = _index(j - le, w, mode)
            out[:, :, i, j] = 0 if si is None or sj is None else X[:, :, si, sj]
    return out


def _exact(a: np.ndarray) -> np.ndarray:
    return np.vectorize(lambda v: Fraction(float(v)), otypes=[object])(np.asarray(a, dtype=np.float64))


def conv(X, K, *, stride=(1, 1), dilation=(1, 1), padding="valid", padding_mode="zeros", groups=1,
         exact: bool = False):
    """The exact general convolution, rounded once to float64 (``exact``: as Fractions)."""
    X, K = np.asarray(X, dtype=np.float64), np.asarray(K, dtype=np.float64)
    p, shape = check(X.shape, K.shape, stride=stride, dilation=dilation, padding=padding,
                     padding_mode=padding_mode, groups=groups)
    Xp, Kf = pad(_exact(X), p, padding_mode), _exact(K)
    (sh, sw), (dh, dw) = stride, dilation
    cout, cg, kh, kw = K.shape
    per = cout // groups
    Y = np.empty(shape, dtype=object)
    for o in range(cout):
        first = (o // per) * cg
        for i in range(shape[2]):
            for j in range(shape[3]):
                rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
                cols = slice(j * sw, j * sw + dw * (kw - 1) + 1, dw)
                window = Xp[:, first:first + cg, rows, cols]
                Y[:, o, i, j] = (window * Kf[o]).sum(axis=(1, 2, 3))
    return Y if exact else Y.astype(np.float64)


def magnitude(X, K, **params) -> np.ndarray:
    """``conv(|X|, |K|)``: the size that scales every rounding error (padding copies values, so
    the padded ``|X|`` is ``|`` padded ``X |``)."""
    return conv(np.abs(X), np.abs(K), **params)


def vjp(X, K, dY, *, stride=(1, 1), dilation=(1, 1), padding="valid", padding_mode="zeros", groups=1):
    """Exact ``(dX, dK)`` of ``sum(conv(X, K) * dY)``, rounded once to float64: the gradient of a padded
    input flows back to the cells it was copied from."""
    X, K = np.asarray(X, dtype=np.float64), np.asarray(K, dtype=np.float64)
    p, shape = check(X.shape, K.shape, stride=stride, dilation=dilation, padding=padding,
                     padding_mode=padding_mode, groups=groups)
    nb, cin, h, w = X.shape
    cout, cg, kh, kw = K.shape
    (sh, sw), (dh, dw), ((t, _), (le, _)) = stride, dilation, p
    per = cout // groups
    Xf, Kf, G = _exact(X), _exact(K), _exact(dY)
    dX = np.full(X.shape, Fraction(0), dtype=object)
    dK = np.full(K.shape, Fraction(0), dtype=object)
    for o in range(cout):
        first = (o // per) * cg
        for i in range(shape[2]):
            for j in range(shape[3]):
                for a in range(kh):
                    si = _index(i * sh + a * dh - t, h, padding_mode)
                    if si is None:
                        continue
                    for e in range(kw):
                        sj = _index(j * sw + e * dw - le, w, padding_mode)
                        if sj is None:
                            continue
                        for c in range(cg):
                            g = G[:, o, i, j]
                            dX[:, first + c, si, sj] += g * Kf[o, c, a, e]
                            dK[o, c, a, e] += (g * Xf[:, first + c, si, sj]).sum()
    return dX.astype(np.float64), dK.astype(np.float64)


def params_of(data: dict) -> dict:
    """A case's ``params`` as keyword arguments (lists to tuples; defaults filled in)."""
    p = dict(data)
    padding = p.get("padding", "valid")
    return {
        "stride": tuple(p.get("stride", (1, 1))), "dilation": tuple(p.get("dilation", (1, 1))),
        "padding": padding if isinstance(padding, str) else tuple(tuple(x) for x in padding),
        "padding_mode": p.get("padding_mode", "zeros"), "groups": int(p.get("groups", 1)),
    }
