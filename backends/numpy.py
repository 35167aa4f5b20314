"""NumPy: the reference adapter, CPU only.

NumPy has no convolution layer and no autograd, so this adapter writes out by
hand what the frameworks provide: the sliding-window view stands in for the
built-in op, and the gradients of the receptive-field and kernel-learning
verbs are the analytic ones (the backward pass of a cross-correlation is a
cross-correlation).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backends.base import (
    VERBS,
    Backend,
    Trajectory,
    general_geometry,
    output_shape,
    pool_geometry,
    pool_overhang,
    transpose_geometry,
)


class NumpyBackend(Backend):
    name = "numpy"
    contract = 2
    module = "numpy"
    # NumPy has no bfloat16; float16 arithmetic is native (each op rounds).
    dtypes = {"cpu": ("float16", "float32", "float64")}
    verbs = VERBS

    def gpu_unavailable_reason(self) -> str | None:
        return "NumPy runs on the CPU only"

    def asarray(self, a: np.ndarray, *, dtype: str, device: str) -> Any:
        return np.array(a, dtype=dtype, copy=True)

    def to_numpy(self, x: Any) -> np.ndarray:
        if not isinstance(x, np.ndarray):
            raise TypeError(f"expected a numpy.ndarray, got {type(x).__name__}")
        return x.copy()

    def device_of(self, x: Any) -> str:
        return "cpu"

    def dtype_of(self, x: Any) -> str:
        return str(x.dtype)

    # -- verbs ---------------------------------------------------------------

    def corr2d(self, X: Any, K: Any) -> Any:
        h, w = K.shape
        Y = np.zeros(output_shape(X.shape, K.shape), dtype=X.dtype)
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
        return Y

    def conv2d(self, X: Any, K: Any) -> Any:
        output_shape(X.shape, K.shape)
        windows = np.lib.stride_tricks.sliding_window_view(X, K.shape)
        return np.einsum("ijkl,kl->ij", windows, K)

    def corr2d_matmul(self, X: Any, K: Any) -> Any:
        kh, kw = K.shape
        oh, ow = output_shape(X.shape, K.shape)
        rows = np.arange(oh)[:, None, None, None] + np.arange(kh)[None, None, :, None]
        cols = np.arange(ow)[None, :, None, None] + np.arange(kw)[None, None, None, :]
        im2col = X[rows, cols].reshape(oh * ow, kh * kw)
        return (im2col @ K.reshape(kh * kw)).reshape(oh, ow)

    def conv2d_layer(self, X: Any, K: Any, b: Any) -> Any:
        layer = Conv2D(K.shape, dtype=X.dtype)
        layer.weight[...] = K
        layer.bias[...] = b
        return layer(X, self.corr2d)

    def layer_parameters(self, kernel_size, *, dtype, device):
        return {name: p.shape for name, p in Conv2D(kernel_size, dtype=dtype).parameters().items()}

    def layer_step(self, X: Any, K: Any, b: Any, Y: Any, *, lr: float) -> dict[str, Any]:
        # NumPy has neither autograd nor an optimizer: the gradient by hand, and plain SGD over
        # exactly the parameters that the layer enumerates.
        layer = Conv2D(K.shape, dtype=X.dtype)
        layer.weight[...] = K
        layer.bias[...] = b
        r = layer(X, self.corr2d) - Y
        grads = {"weight": 2 * self.corr2d(X, r), "bias": np.full((1,), 2 * r.sum(), dtype=X.dtype)}
        params = layer.parameters()
        for name, p in params.items():
            p -= X.dtype.type(lr) * grads[name]
        return {name: p.copy() for name, p in params.items()}

    def receptive_field(self, X: Any, K1: Any, K2: Any) -> tuple[Any, Any]:
        Y = self.corr2d(X, K1)
        # dZ/dY for Z = corr(Y, K2).sum(), then dY/dX for each, by the chain rule.
        dZ_dY = self._corr2d_backward(Y.shape, K2, np.ones_like(self.corr2d(Y, K2)))
        dZ_dX = self._corr2d_backward(X.shape, K1, dZ_dY)
        seed = np.zeros_like(Y)
        seed[0, 0] = 1
        return dZ_dX, self._corr2d_backward(X.shape, K1, seed)

    @staticmethod
    def _corr2d_backward(x_shape, K, dY):
        """Gradient of ``sum(corr2d(X, K) * dY)`` with respect to ``X``."""
        dX = np.zeros(x_shape, dtype=dY.dtype)
        h, w = K.shape
        for i in range(dY.shape[0]):
            for j in range(dY.shape[1]):
                dX[i:i + h, j:j + w] += dY[i, j] * K
        return dX

    # The reference: NumPy has no convolution op, so every convention is written out here from
    # np.pad, sliding_window_view and einsum, and the gradient by hand.
    conventions = {
        "valid": "native: sliding_window_view + einsum, no padding",
        "explicit": "native: np.pad(mode='constant') with the pairs",
        "same": "emulated: np.pad with TensorFlow's pads (backends.base.general_geometry)",
        "same_lower": "emulated: np.pad with the extra pixel at the beginning",
        "same_strided": "emulated: np.pad with TensorFlow's pads",
        "stride": "native: the window view sliced by the stride", "dilation": "native: the window view sliced by "
        "the dilation", "dilation_strided": "native: both slices",
        "channels": "native: einsum over (group, channel, kh, kw)", "groups": "native: einsum per group",
        "depthwise": "native: einsum per group, groups = C_in",
        "reflect": "native: np.pad(mode='reflect') (periodic for a pad >= n: the geometry refuses first)",
        "replicate": "native: np.pad(mode='edge')", "symmetric": "native: np.pad(mode='symmetric')",
        "circular": "native: np.pad(mode='wrap')",
        "gradient": "emulated: the backward pass by hand (NumPy has no autograd), through np.pad's index map",
        "subnormals": "kept: IEEE 754 subnormals in every dtype (measured)",
        "layout_nhwc": "emulated: np.transpose to NCHW/OIHW and back",
        "pool_max": "native: sliding_window_view(...).max over -inf padding",
        "pool_avg": "native: window sums over zero padding, divided by the counted cells",
        "pool_padding": "native: np.pad", "pool_asymmetric": "native: np.pad", "pool_same": "emulated: np.pad with "
        "TensorFlow's pads", "pool_include_pad": "native: a mask of the padded extent",
        "pool_exclude_pad": "native: a mask of the input", "pool_ceil": "native: overhanging cells, never counted",
        "transpose": "native: each kernel tap's scattered copy added with einsum",
        "transpose_stride": "native: strided slices", "transpose_dilation": "native: taps dilation apart",
        "transpose_crop": "native: output_padding zeros at the end, then the crop sliced off",
        "transpose_same": "emulated: TensorFlow's crop sliced off",
    }
    #: np.pad's modes for the spec's padding modes.
    PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "symmetric": "symmetric",
                 "circular": "wrap"}

    def conv_general(self, X, K, *, stride, dilation, padding, padding_mode, groups, layout="nchw"):
        if layout == "nhwc":
            Y = self.conv_general(X.transpose(0, 3, 1, 2), K.transpose(3, 2, 0, 1), stride=stride, dilation=dilation,
                                  padding=padding, padding_mode=padding_mode, groups=groups)
            return Y.transpose(0, 2, 3, 1)
        # NumPy pads reflect and wrap modes periodically for any size: the geometry refuses first.
        pads, shape = general_geometry(X.shape, K.shape, stride=stride, dilation=dilation, padding=padding,
                                       padding_mode=padding_mode, groups=groups)
        Xp = np.pad(X, ((0, 0), (0, 0), *pads), mode=self.PAD_MODES[padding_mode])
        (sh, sw), (dh, dw) = stride, dilation
        cout, cg, kh, kw = K.shape
        span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
        windows = np.lib.stride_tricks.sliding_window_view(Xp, span, axis=(2, 3))
        windows = windows[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :shape[2], :shape[3]]  # (N, C, Ho, Wo, kh, kw)
        n, _, ho, wo = shape
        per = cout // groups
        wg = windows.reshape(n, groups, cg, ho, wo, kh, kw)
        kg = K.reshape(groups, per, cg, kh, kw)
        Y = np.einsum("ngchwij,gocij->ngohw", wg, kg)
        return Y.reshape(n, cout, ho, wo).astype(X.dtype, copy=False)

    def conv_general_vjp(self, X, K, dY, **params):
        if params.pop("layout", "nchw") == "nhwc":
            dX, dK = self.conv_general_vjp(X.transpose(0, 3, 1, 2), K.transpose(3, 2, 0, 1), dY.transpose(0, 3, 1, 2),
                                           **params)
            return dX.transpose(0, 2, 3, 1), dK.transpose(2, 3, 1, 0)
        # No autograd: the backward pass by hand, window by window; a padded cell's gradient goes
        # back to the cell it was copied from (np.pad's own index maps, read from a padded index grid).
        pads, shape = general_geometry(X.shape, K.shape, **params)
        (sh, sw), (dh, dw), groups = params["stride"], params["dilation"], params["groups"]
        n, cin, h, w = X.shape
        cout, cg, kh, kw = K.shape
        per = cout // groups
        index = np.arange(h * w).reshape(h, w)
        mode = self.PAD_MODES[params["padding_mode"]]
        src = np.pad(index, pads, mode=mode) if mode != "constant" else np.pad(index, pads, constant_values=-1)
        dX = np.zeros((n, cin, h * w), dtype=X.dtype)
        dK = np.zeros_like(K)
        Xflat = X.reshape(n, cin, h * w)
        for o in range(cout):
            c0 = (o // per) * cg
            for i in range(shape[2]):
                for j in range(shape[3]):
                    cells = src[i * sh:i * sh + dh * (kh - 1) + 1:dh, j * sw:j * sw + dw * (kw - 1) + 1:dw]
                    live = cells >= 0
                    g = dY[:, o, i, j][:, None, None, None]  # (N, 1, 1, 1)
                    for a, e in zip(*np.nonzero(live), strict=True):
                        dX[:, c0:c0 + cg, cells[a, e]] += dY[:, o, i, j][:, None] * K[o, :, a, e][None, :]
                        dK[o, :, a, e] += (g[:, :, 0, 0] * Xflat[:, c0:c0 + cg, cells[a, e]]).sum(axis=0)
        return dX.reshape(X.shape), dK

    #: NumPy has no autograd: its gradients are explicit functions already, the same ones.
    conv_general_backprop = conv_general_vjp

    def pool2d(self, X, *, kind, window, stride, padding, ceil_mode, count_include_pad):
        pads, shape = pool_geometry(X.shape, kind=kind, window=window, stride=stride, padding=padding,
                                    ceil_mode=ceil_mode, count_include_pad=count_include_pad)
        ((t, b), (le, r)), (h, w), (kh, kw), (sh, sw), (ho, wo) = pads, X.shape[2:], window, stride, shape[2:]
        # Cells past the padded extent, where a ceil-mode window overhangs: never picked, never counted.
        eh, ew = pool_overhang(X.shape, pads, window, stride, shape)
        fill = -np.inf if kind == "max" else 0
        Xp = np.pad(X, ((0, 0), (0, 0), (t, b + eh), (le, r + ew)), constant_values=fill)
        windows = np.lib.stride_tricks.sliding_window_view(Xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :ho, :wo]
        if kind == "max":
            return windows.max(axis=(-2, -1))
        inside = np.pad(np.ones((h, w)), ((t, b), (le, r)), constant_values=1 if count_include_pad else 0)
        counts = np.lib.stride_tricks.sliding_window_view(np.pad(inside, ((0, eh), (0, ew))), (kh, kw))
        counts = counts[::sh, ::sw][:ho, :wo].sum(axis=(-2, -1))
        return (windows.sum(axis=(-2, -1)) / counts).astype(X.dtype)

    def conv_transpose(self, X, K, *, stride, dilation, padding, output_padding):
        crops, _ = transpose_geometry(X.shape, K.shape, stride=stride, dilation=dilation, padding=padding,
                                      output_padding=output_padding)
        (n, _, h, w), (_, cout, kh, kw), (sh, sw), (dh, dw) = X.shape, K.shape, stride, dilation
        full = ((h - 1) * sh + dh * (kh - 1) + 1 + output_padding[0],
                (w - 1) * sw + dw * (kw - 1) + 1 + output_padding[1])
        Y = np.zeros((n, cout, *full), dtype=X.dtype)
        for a in range(kh):
            for e in range(kw):  # every input cell's copy of tap (a, e)
                Y[:, :, a * dh:a * dh + (h - 1) * sh + 1:sh, e * dw:e * dw + (w - 1) * sw + 1:sw] += np.einsum(
                    "nchw,co->nohw", X, K[:, :, a, e])
        (t, b), (le, r) = crops
        return Y[:, :, t:full[0] - b, le:full[1] - r]

    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        if initial is None:
            # torch.rand's convention for the book's Conv2D: uniform on [0, 1).
            initial = np.random.default_rng(seed).random(kernel_size).astype(X.dtype)
        W = initial.copy()
        lr = X.dtype.type(lr)
        losses = np.zeros(steps, dtype=X.dtype)
        for step in range(steps):
            residual = self.conv2d(X, W) - Y
            losses[step] = (residual ** 2).sum()
            # d/dW sum(r**2) = 2 * corr2d(X, r): the backward pass of a cross-correlation.
            W = W - lr * (2 * self.conv2d(X, residual))
        return Trajectory(initial=initial, losses=losses, kernel=W)


class Conv2D:
    """The book's ``Conv2D`` layer; NumPy has no module system, so the
    parameters are plain attributes enumerated by :meth:`parameters`."""

    def __init__(self, kernel_size, *, dtype):
        self.weight = np.zeros(kernel_size, dtype=dtype)
        self.bias = np.zeros((1,), dtype=dtype)

    def parameters(self) -> dict[str, np.ndarray]:
        return {"weight": self.weight, "bias": self.bias}

    def __call__(self, x, corr2d):
        return corr2d(x, self.weight) + self.bias
