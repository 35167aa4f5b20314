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
    "layout_nhwc": "channels-last data: X (N, H, W, C_in), K (kh, kw, C_in/groups, C_out) (HWIO), the result "
                   "and the gradients likewise (TensorFlow's default, torch channels_last, lax dimension_numbers, "
                   "MXNet layout='NHWC')",
    "subnormals": "subnormal inputs and results, kept (IEEE 754) or flushed to zero (FTZ/DAZ), as the adapter "
                  "declares in flushes_subnormals",
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


def check(x_shape, k_shape, *, stride, dilation, padding, padding_mode, groups, layout="nchw") -> tuple:
    """The pads and output shape, or :class:`ConvError` with the rule that is broken.  With ``layout``
    "nhwc" the shapes are channels-last (X NHWC, K HWIO), and so is the output shape."""
    if layout not in ("nchw", "nhwc"):
        raise ConvError(f"unknown layout {layout!r}: 'nchw' or 'nhwc'")
    if layout == "nhwc":
        if len(x_shape) != 4 or len(k_shape) != 4:
            raise ConvError(f"X must be (N, H, W, C_in) and K (kh, kw, C_in/groups, C_out): {x_shape}, {k_shape}")
        x_shape = tuple(x_shape[i] for i in np.argsort(TO_NHWC["X"]))
        k_shape = tuple(k_shape[i] for i in np.argsort(TO_NHWC["K"]))
        p, shape = check(x_shape, k_shape, stride=stride, dilation=dilation, padding=padding,
                         padding_mode=padding_mode, groups=groups)
        return p, tuple(shape[i] for i in TO_NHWC["y"])
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
    out = np.empty((nb, c, h + t + b, w + le + r), dtype=X.dtype)
    for i in range(h + t + b):
        si = _index(i - t, h, mode)
        for j in range(w + le + r):
            sj = _index(j - le, w, mode)
            out[:, :, i, j] = 0 if si is None or sj is None else X[:, :, si, sj]
    return out


def _exact(a: np.ndarray) -> np.ndarray:
    return np.vectorize(lambda v: Fraction(float(v)), otypes=[object])(np.asarray(a, dtype=np.float64))


def _scale(a: np.ndarray, limit: int = 40) -> int | None:
    """Smallest ``m`` with ``a * 2**m`` integer-valued (``None`` past ``limit``)."""
    a = np.asarray(a, dtype=np.float64)
    for m in range(limit):
        scaled = a * 2.0**m
        if np.array_equal(scaled, np.round(scaled)):
            return m
    return None


def _fast(*arrays: np.ndarray, terms: int) -> bool:
    """True when every array is a dyadic rational (an integer times ``2**-m``) and no sum of ``terms``
    products of two of them, in those units, can reach 2**53: float64 then computes every product and
    partial sum exactly, in any order, and the oracle need not use fractions (its fast path)."""
    bound, largest = float(terms), []
    for a in arrays:
        m = _scale(a)
        if m is None:
            return False
        largest.append(max(float(np.max(np.abs(np.asarray(a, dtype=np.float64)), initial=0.0)) * 2.0**m, 1.0))
    largest.sort()
    return bound * largest[-1] * (largest[-2] if len(largest) > 1 else 1.0) < 2.0**53


def _numbers(a: np.ndarray, fast: bool) -> np.ndarray:
    return np.asarray(a, dtype=np.float64) if fast else _exact(a)


def conv(X, K, *, stride=(1, 1), dilation=(1, 1), padding="valid", padding_mode="zeros", groups=1,
         exact: bool = False):
    """The exact general convolution, rounded once to float64 (``exact``: as Fractions)."""
    X, K = np.asarray(X, dtype=np.float64), np.asarray(K, dtype=np.float64)
    p, shape = check(X.shape, K.shape, stride=stride, dilation=dilation, padding=padding,
                     padding_mode=padding_mode, groups=groups)
    fast = not exact and _fast(X, K, terms=int(np.prod(K.shape[1:])))
    Xp, Kf = pad(_numbers(X, fast), p, padding_mode), _numbers(K, fast)
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
                Y[:, o, i, j] = (window.astype(Kf.dtype) * Kf[o]).sum(axis=(1, 2, 3))
    return Y if exact else Y.astype(np.float64)


def conventions_of(x_shape, k_shape, params: dict) -> set[str]:
    """The named conventions a general convolution exercises (for generated cases, which must keep to
    what an adapter declares it gives)."""
    pad, mode = params["padding"], params["padding_mode"]
    strided, dilated = tuple(params["stride"]) != (1, 1), tuple(params["dilation"]) != (1, 1)
    used = {"valid"} if pad == "valid" else ({pad} if isinstance(pad, str) else {"explicit"})
    if isinstance(pad, str) and pad.startswith("same") and strided:
        used.add("same_strided")
    used |= {name for name, on in (("stride", strided), ("dilation", dilated), ("dilation_strided",
                                                                                 strided and dilated)) if on}
    if x_shape[1] != k_shape[0] or x_shape[0] > 1 or k_shape[2] != k_shape[3]:
        used.add("channels")
    if params["groups"] > 1:
        used.add("depthwise" if params["groups"] == x_shape[1] else "groups")
    if mode != "zeros":
        used.add(mode)
    if params.get("layout", "nchw") == "nhwc":
        used.add("layout_nhwc")
    return used


#: The spec's logical layout is NCHW (X, Y, dY, dX) and OIHW (K, dK); a case with ``layout: "nhwc"`` gives
#: and expects its arrays in channels-last order, by these axis permutations of the logical ones.
TO_NHWC = {"X": (0, 2, 3, 1), "y": (0, 2, 3, 1), "dY": (0, 2, 3, 1), "dX": (0, 2, 3, 1),
           "K": (2, 3, 1, 0), "dK": (2, 3, 1, 0)}


def logical(params: dict) -> dict:
    """A case's parameters without its layout: what the oracle computes with (on logical arrays)."""
    return {k: v for k, v in params.items() if k != "layout"}


def to_layout(a, role: str, layout: str):
    """A logical (NCHW / OIHW) array in ``layout``; ``role`` is its key in :data:`TO_NHWC`."""
    return a if layout == "nchw" else np.ascontiguousarray(np.transpose(a, TO_NHWC[role]))


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
    dY = np.asarray(dY, dtype=np.float64)
    fast = _fast(X, K, dY, terms=int(np.prod(dY.shape) * np.prod(K.shape)))
    Xf, Kf, G = (_numbers(a, fast) for a in (X, K, dY))
    zero = 0.0 if fast else Fraction(0)
    dX = np.full(X.shape, zero, dtype=np.float64 if fast else object)
    dK = np.full(K.shape, zero, dtype=np.float64 if fast else object)
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
    params = {
        "stride": tuple(p.get("stride", (1, 1))), "dilation": tuple(p.get("dilation", (1, 1))),
        "padding": padding if isinstance(padding, str) else tuple(tuple(x) for x in padding),
        "padding_mode": p.get("padding_mode", "zeros"), "groups": int(p.get("groups", 1)),
    }
    if p.get("layout", "nchw") != "nchw":  # given only where a case asks for another layout
        params["layout"] = p["layout"]
    return params


# -- pooling (d2l 7.5) ----------------------------------------------------------

POOL_KINDS = ("max", "avg")

POOL_CONVENTIONS = {
    "pool_max": "maximum pooling (padding never chosen)",
    "pool_avg": "average pooling",
    "pool_padding": "symmetric explicit padding",
    "pool_asymmetric": "asymmetric explicit padding",
    "pool_same": "'same' pooling (TensorFlow's rule: out = ceil(n / s), the extra pixel at the end)",
    "pool_include_pad": "an average that counts the padded cells (torch count_include_pad=True)",
    "pool_exclude_pad": "an average over the input cells only (torch count_include_pad=False, TF 'SAME')",
    "pool_ceil": "ceil output sizes (torch ceil_mode, MXNet pooling_convention='full')",
}
CONVENTIONS.update(POOL_CONVENTIONS)


def pool_check(x_shape, *, kind, window, stride, padding, ceil_mode, count_include_pad) -> tuple:
    """The pads and output shape of a pooling, or :class:`ConvError`.

    Per axis, with pads ``(lo, hi)`` (as for the convolution; 'same' by TensorFlow's rule), ``span =
    n + lo + hi - k``: ``out = floor(span / s) + 1``, or with ``ceil_mode`` ``ceil(span / s) + 1``, less
    one if the last window would start at or past ``n + lo`` (past the input and the leading pad:
    torch's and Caffe's rule, so that no window lies wholly outside).  A window covers padded cells
    ``[i s, i s + k)`` clipped to the padded extent ``[0, n + lo + hi)``.  Max pooling never picks a
    padded cell; an average divides the sum over input cells by the clipped window's size
    (``count_include_pad``) or by its number of input cells.  A window larger than the padded input,
    a window with no input cell, a negative pad or a stride below 1 are errors.
    """
    if len(x_shape) != 4:
        raise ConvError(f"X must be (N, C, H, W): {x_shape}")
    if kind not in POOL_KINDS:
        raise ConvError(f"unknown pooling {kind!r}")
    if min(*stride, *window) < 1:
        raise ConvError(f"window {tuple(window)} and stride {tuple(stride)} must be at least 1")
    p = pads(padding, x_shape[2:], window, stride, (1, 1))
    out = []
    for (lo, hi), n, k, s in zip(p, x_shape[2:], window, stride, strict=True):
        if lo < 0 or hi < 0:
            raise ConvError(f"negative padding {(lo, hi)}")
        span = n + lo + hi - k
        if span < 0:
            raise ConvError(f"the {k}-wide window is larger than the padded input ({n + lo + hi})")
        size = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (size - 1) * s >= n + lo:
            size -= 1
        for i in range(size):
            if min(i * s + k, n + lo) <= max(i * s, lo):
                raise ConvError(f"pooling window {i} ({i * s - lo}..{i * s + k - lo - 1}) holds no input cell")
        out.append(size)
    return p, (*x_shape[:2], *out)


def pool(X, *, kind, window, stride, padding="valid", ceil_mode=False, count_include_pad=True):
    """Exact pooling, rounded once to float64."""
    X = np.asarray(X, dtype=np.float64)
    p, shape = pool_check(X.shape, kind=kind, window=window, stride=stride, padding=padding, ceil_mode=ceil_mode,
                          count_include_pad=count_include_pad)
    ((t, b), (le, r)), (h, w) = p, X.shape[2:]
    (kh, kw), (sh, sw) = window, stride
    Xf = _exact(X)
    Y = np.empty(shape, dtype=object)
    for i in range(shape[2]):
        r0, r1 = i * sh, min(i * sh + kh, h + t + b)
        rows = range(max(r0, t) - t, min(r1, t + h) - t)
        for j in range(shape[3]):
            c0, c1 = j * sw, min(j * sw + kw, w + le + r)
            cols = range(max(c0, le) - le, min(c1, le + w) - le)
            cells = Xf[:, :, rows.start:rows.stop, cols.start:cols.stop]
            if kind == "max":
                Y[:, :, i, j] = cells.max(axis=(2, 3))
            else:
                count = (r1 - r0) * (c1 - c0) if count_include_pad else len(rows) * len(cols)
                Y[:, :, i, j] = cells.sum(axis=(2, 3)) / count
    return Y.astype(np.float64)


def pool_params_of(data: dict) -> dict:
    padding = data.get("padding", "valid")
    return {"kind": data["kind"], "window": tuple(data["window"]), "stride": tuple(data.get("stride", data["window"])),
            "padding": padding if isinstance(padding, str) else tuple(tuple(x) for x in padding),
            "ceil_mode": bool(data.get("ceil_mode", False)),
            "count_include_pad": bool(data.get("count_include_pad", True))}


def pool_conventions_of(params: dict) -> set[str]:
    """The named conventions a pooling exercises (for generated cases, which keep to what an adapter
    declares it gives)."""
    used = {f"pool_{params['kind']}"}
    pad = params["padding"]
    padded = pad == "same" or (not isinstance(pad, str) and any(lo or hi for lo, hi in pad))
    if pad == "same":
        used.add("pool_same")
    elif padded:
        used.add("pool_asymmetric" if any(lo != hi for lo, hi in pad) else "pool_padding")
    if params["kind"] == "avg" and padded:
        used.add("pool_include_pad" if params["count_include_pad"] else "pool_exclude_pad")
    if params["ceil_mode"]:
        used.add("pool_ceil")
    return used


# -- transposed convolution (d2l 14.10) ----------------------------------------------

TRANSPOSE_CONVENTIONS = {
    "transpose": "transposed convolution: every input cell scatters its kernel-weighted copy (no kernel flip)",
    "transpose_stride": "transposed convolution with stride > 1",
    "transpose_crop": "transposed convolution cropped by padding p on both sides, output_padding added at the "
                      "end (torch, MXNet, ONNX pads)",
    "transpose_same": "transposed convolution to n*s: the full result cropped total//2 at the beginning, the rest "
                      "at the end (TensorFlow 'SAME', ONNX SAME_UPPER)",
    "transpose_dilation": "transposed convolution with dilation > 1",
}
CONVENTIONS.update(TRANSPOSE_CONVENTIONS)


def transpose_check(x_shape, k_shape, *, stride, dilation, padding, output_padding) -> tuple:
    """Crops and output shape of a transposed convolution, or :class:`ConvError`.

    ``X`` is ``(N, C_in, H, W)``, ``K`` ``(C_in, C_out, kh, kw)`` (torch's and MXNet's layout for the
    transposed convolution).  Per axis the full scatter has ``F = (n - 1) s + d (k - 1) + 1`` cells,
    ``output_padding`` cells (zeros where the scatter ends sooner) are added at the end, and
    ``(lo, hi)`` are cropped: explicit pairs, or ``"same"``: the output is ``n s`` cells, the full
    result cropped ``total // 2`` at the beginning and the rest at the end, ``total = F - n s``
    (TensorFlow's 'SAME', ONNX SAME_UPPER).  ``output_padding`` must be smaller than the stride or
    the dilation (torch's and ONNX's rule) and is 0 with "same"; crops are not negative and leave at
    least one cell.
    """
    if len(x_shape) != 4 or len(k_shape) != 4:
        raise ConvError(f"X must be (N, C_in, H, W) and K (C_in, C_out, kh, kw): {x_shape}, {k_shape}")
    if x_shape[1] != k_shape[0]:
        raise ConvError(f"K has {k_shape[0]} input channels, X has {x_shape[1]}")
    if min(*stride, *dilation) < 1:
        raise ConvError(f"stride {tuple(stride)} and dilation {tuple(dilation)} must be at least 1")
    crops, out = [], []
    for axis, (n, k, s, d, op) in enumerate(zip(x_shape[2:], k_shape[2:], stride, dilation, output_padding,
                                               strict=True)):
        if op < 0 or (op >= s and op >= d):
            raise ConvError(f"output_padding {op} must be smaller than the stride {s} or the dilation {d}")
        full = (n - 1) * s + d * (k - 1) + 1
        if padding == "same":
            if op:
                raise ConvError("output_padding with 'same': the output is n*s")
            total = max(full - n * s, 0)
            lo, hi = total // 2, total - total // 2
        else:
            lo, hi = padding[axis]
        if lo < 0 or hi < 0:
            raise ConvError(f"negative padding {(lo, hi)}")
        size = full + op - lo - hi
        if size < 1:
            raise ConvError(f"padding {(lo, hi)} crops away the whole {full + op}-cell result")
        crops.append((lo, hi))
        out.append(size)
    return tuple(crops), (x_shape[0], k_shape[1], *out)


def conv_transpose(X, K, *, stride=(1, 1), dilation=(1, 1), padding=((0, 0), (0, 0)), output_padding=(0, 0)):
    """The exact transposed convolution, rounded once to float64."""
    X, K = np.asarray(X, dtype=np.float64), np.asarray(K, dtype=np.float64)
    crops, shape = transpose_check(X.shape, K.shape, stride=stride, dilation=dilation, padding=padding,
                                   output_padding=output_padding)
    (sh, sw), (dh, dw) = stride, dilation
    nb, cin, h, w = X.shape
    _, cout, kh, kw = K.shape
    full_h = (h - 1) * sh + dh * (kh - 1) + 1 + output_padding[0]
    full_w = (w - 1) * sw + dw * (kw - 1) + 1 + output_padding[1]
    Xf, Kf = _exact(X), _exact(K)
    Y = np.full((nb, cout, full_h, full_w), Fraction(0), dtype=object)
    for i in range(h):
        for j in range(w):
            for a in range(kh):
                for e in range(kw):
                    # (N, C_in) x (C_in, C_out) -> (N, C_out)
                    Y[:, :, i * sh + a * dh, j * sw + e * dw] += Xf[:, :, i, j].dot(Kf[:, :, a, e])
    (t, b), (le, r) = crops
    return Y[:, :, t:full_h - b, le:full_w - r].astype(np.float64)


def adjoint_crops(x_shape, k_shape, params: dict) -> tuple:
    """``(crops, output_padding)`` under which ``conv_transpose(dY, K)`` is the input gradient of
    ``conv(X, K, **params)`` (zero padding, one group): the convolution's pads, and the trailing
    cells that no window reached."""
    pads, _ = check(x_shape, k_shape, **params)
    rest = tuple((n + lo + hi - d * (k - 1) - 1) % s for n, (lo, hi), k, s, d
                 in zip(x_shape[2:], pads, k_shape[2:], params["stride"], params["dilation"], strict=True))
    return pads, rest


def transpose_params_of(data: dict) -> dict:
    padding = data.get("padding", [[0, 0], [0, 0]])
    return {"stride": tuple(data.get("stride", (1, 1))), "dilation": tuple(data.get("dilation", (1, 1))),
            "padding": padding if isinstance(padding, str) else tuple(tuple(x) for x in padding),
            "output_padding": tuple(data.get("output_padding", (0, 0)))}


def flushed(a: np.ndarray, dtype: str) -> np.ndarray:
    """``a`` with every value below ``dtype``'s smallest normal in magnitude set to zero (FTZ/DAZ)."""
    tiny = {"float16": 2.0**-14, "bfloat16": 2.0**-126, "float32": 2.0**-126, "float64": 2.0**-1022}[dtype]
    a = np.asarray(a, dtype=np.float64)
    return np.where(np.abs(a) < tiny, 0.0, a)
