"""MLX (``mlx[cpu]`` on Linux): ``mlx.core`` ops, ``mlx.nn`` modules, ``mlx.optimizers``.

MLX is channels-last: ``mx.conv_general`` takes NHWC images and (C_out, kh, kw, C_in) weights, so the spec's
NCHW/OIHW are transposed in and out with ``mx.transpose``.  MLX is lazy: every verb evaluates its results
before it returns.  An mlx array carries no device (an op runs on the stream it is given): every verb runs
under ``mx.stream(mx.cpu)``.  On the CPU MLX has no reduced-precision or determinism switch
(``MLX_ENABLE_TF32`` is read by its Metal and CUDA backends only), so :meth:`numerics` sets nothing.
:meth:`load` asks MLX once which dtypes its CPU convolves in and whether that convolution holds float64
(MLX 0.32 computes float64 in float32, and refuses it when dilated or grouped: ``findings/mlx/``).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from backends.base import (
    DTYPES,
    VERBS,
    Backend,
    Trajectory,
    general_geometry,
    output_shape,
    pool_geometry,
    pool_overhang,
    transpose_geometry,
)

#: The general convolution's verbs: declared in float64 only where MLX's CPU convolution holds it (probed).
GENERAL = ("conv_general", "conv_general_vjp", "conv_transpose")


def _on_cpu(verb):
    """Run a verb on MLX's CPU stream and evaluate what it returns (MLX is lazy)."""
    @functools.wraps(verb)
    def run(self, *args, **kwargs):
        mx = self.lib
        with mx.stream(mx.cpu):
            out = verb(self, *args, **kwargs)
            mx.eval(out.__dict__ if isinstance(out, Trajectory) else out)
        return out
    return run


class MlxBackend(Backend):
    name = "mlx"
    contract = 2
    module = "mlx.core"
    # Replaced in load() by what MLX's CPU does (probed).
    dtypes = {"cpu": DTYPES}
    verbs = tuple(v for v in VERBS if v != "conv_general_backprop")
    conventions = {
        "valid": "native: mx.conv_general(padding=0)", "stride": "native: stride=",
        "explicit": "native: mx.conv_general(padding=([top, left], [bottom, right])) (padding_lo, padding_hi)",
        "same": "emulated: padding_lo/padding_hi by TensorFlow's rule (MLX has no padding words)",
        "same_lower": "emulated: padding_lo/padding_hi, the extra pixel at the beginning",
        "same_strided": "emulated: the same pads, with stride=", "dilation": "native: kernel_dilation=",
        "dilation_strided": "native: stride= with kernel_dilation=", "groups": "native: groups=",
        "channels": "native: NHWC input and (C_out, kh, kw, C_in) weight, transposed from NCHW / OIHW",
        "depthwise": "native: groups=C_in", "reflect": "native: mx.pad(mode='reflect'), then no padding",
        "replicate": "native: mx.pad(mode='edge')", "symmetric": "native: mx.pad(mode='symmetric')",
        "circular": "emulated: mx.concatenate of wrapped slices (mx.pad has no wrap mode)",
        "gradient": "native: mx.vjp", "subnormals": "kept in float16, bfloat16, float32 (measured, MLX 0.32 CPU)",
        "layout_nhwc": "native: MLX's own layout (NHWC); the HWIO kernel transposed to (C_out, kh, kw, C_in)",
        "pool_max": "native: nn.MaxPool2d", "pool_avg": "native: nn.AvgPool2d",
        "pool_padding": "native: nn.MaxPool2d/AvgPool2d(padding=) (symmetric; -inf for the maximum)",
        "pool_asymmetric": "emulated: mx.pad (-inf), then nn.MaxPool2d; an average as window sums",
        "pool_same": "emulated: TensorFlow's pads, then as explicit pads",
        "pool_include_pad": "native: nn.AvgPool2d(padding=); emulated (window sums over mx.pad, divided by the "
                            "cells counted) with asymmetric pads or ceil sizes",
        "pool_exclude_pad": "emulated: window sums (strided slices of mx.pad) divided by the input cells "
                            "(nn.AvgPool2d counts its padding)",
        "pool_ceil": "emulated: mx.pad past the padded extent (MLX pooling has no ceil mode), never picked nor counted",
        "transpose": "native: mx.conv_transpose2d, weight (C_out, kh, kw, C_in) from IOHW",
        "transpose_stride": "native: stride=", "transpose_dilation": "native: dilation=",
        "transpose_crop": "native: padding=, output_padding= (symmetric); asymmetric crops sliced off",
        "transpose_same": "emulated: the uncropped result, total // 2 sliced off at the beginning",
    }
    PAD_MODES = {"reflect": "reflect", "replicate": "edge", "symmetric": "symmetric"}

    def load(self) -> Any:
        mx = super().load()
        import mlx.nn
        import mlx.optimizers
        from mlx.utils import tree_flatten
        self.nn, self.optim, self.tree_flatten = mlx.nn, mlx.optimizers, tree_flatten
        dtypes = tuple(d for d in DTYPES if _probe_conv(mx, d) is not None)
        self.dtypes = {"cpu": dtypes}
        if "float64" in dtypes and not _probe_conv(mx, "float64"):  # findings/mlx/conv_float64_refused
            self.verb_dtypes = {verb: tuple(d for d in dtypes if d != "float64") for verb in GENERAL}
        return mx

    def precision_settings(self) -> dict[str, Any]:
        return {"mx.default_device()": str(self.lib.default_device())}

    def asarray(self, a: np.ndarray, *, dtype: str, device: str) -> Any:
        if device != "cpu":
            raise ValueError(f"this adapter runs MLX on the CPU only, not {device!r}")
        # dtype= is needed: mx.array narrows a float64 NumPy array to float32 by default.
        return self.lib.array(np.ascontiguousarray(a), dtype=getattr(self.lib, dtype))

    def to_numpy(self, x: Any) -> np.ndarray:
        if not isinstance(x, self.lib.array):
            raise TypeError(f"not an mlx array: {type(x).__name__}")
        return np.array(x.astype(self.lib.float32) if x.dtype == self.lib.bfloat16 else x, copy=True)

    def device_of(self, x: Any) -> str:
        return "cpu"  # an mlx array has no device of its own (unified memory); every verb runs on the CPU stream

    def dtype_of(self, x: Any) -> str:
        return str(x.dtype).removeprefix("mlx.core.")

    def _corr2d(self, X: Any, K: Any) -> Any:
        h, w = K.shape
        Y = self.lib.zeros(output_shape(X.shape, K.shape), dtype=X.dtype)
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
        return Y
    corr2d = _on_cpu(_corr2d)

    def _conv2d(self, X: Any, K: Any) -> Any:
        output_shape(X.shape, K.shape)
        return self.lib.conv2d(X[None, :, :, None], K[None, :, :, None])[0, :, :, 0]
    conv2d = _on_cpu(_conv2d)

    @_on_cpu
    def corr2d_matmul(self, X: Any, K: Any) -> Any:
        (kh, kw), (oh, ow) = K.shape, output_shape(X.shape, K.shape)
        # Column (i, j) of im2col is the input shifted by (i, j): element (i, j) of every window.
        im2col = self.lib.stack([X[i:i + oh, j:j + ow].reshape(-1) for i in range(kh) for j in range(kw)], axis=1)
        return (im2col @ K.reshape(kh * kw)).reshape(oh, ow)

    def _layer(self, kernel_size, dtype) -> Any:
        """The book's ``Conv2D`` as an ``mlx.nn.Module``: weight and bias are its parameters."""
        mx, nn, corr2d = self.lib, self.nn, self._corr2d

        class Conv2D(nn.Module):
            def __init__(self):
                super().__init__()
                # torch.rand's convention, from MLX's global generator (uniform has no float64: drawn in float32).
                self.weight = mx.random.uniform(shape=tuple(kernel_size)).astype(dtype)
                self.bias = mx.zeros((1,), dtype=dtype)

            def __call__(self, x):
                return corr2d(x, self.weight) + self.bias

        return Conv2D()

    @_on_cpu
    def conv2d_layer(self, X: Any, K: Any, b: Any) -> Any:
        layer = self._layer(K.shape, X.dtype)
        layer.update({"weight": K, "bias": b})
        return layer(X)

    @_on_cpu
    def layer_parameters(self, kernel_size, *, dtype, device):
        layer = self._layer(kernel_size, getattr(self.lib, dtype))
        return {name: tuple(p.shape) for name, p in self.tree_flatten(layer.trainable_parameters())}

    @_on_cpu
    def layer_step(self, X: Any, K: Any, b: Any, Y: Any, *, lr: float) -> dict[str, Any]:
        # The forward is the book's corr2d, whose indexed writes MLX's autograd follows.
        layer = self._layer(K.shape, X.dtype)
        layer.update({"weight": K, "bias": b})
        optimizer = self.optim.SGD(learning_rate=lr)
        _, grads = self.nn.value_and_grad(layer, lambda: ((layer(X) - Y) ** 2).sum())()
        optimizer.update(layer, grads)
        return dict(self.tree_flatten(layer.trainable_parameters()))

    @_on_cpu
    def receptive_field(self, X: Any, K1: Any, K2: Any) -> tuple[Any, Any]:
        grad, corr = self.lib.grad, self._conv2d
        return grad(lambda x: corr(corr(x, K1), K2).sum())(X), grad(lambda x: corr(x, K1)[0, 0])(X)

    @_on_cpu
    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        mx, nn = self.lib, self.nn
        # nn.Conv2d draws its weight from MLX's global key, which cannot be saved and restored: the layer's
        # own initialiser is handed the seed's key instead, for the time the layer is built.
        uniform = mx.random.uniform
        mx.random.uniform = functools.partial(uniform, key=mx.random.key(seed))
        try:
            conv = nn.Conv2d(1, 1, tuple(kernel_size), bias=False)
        finally:
            mx.random.uniform = uniform
        conv.set_dtype(X.dtype)
        if initial is not None:
            conv.update({"weight": initial.reshape(1, *kernel_size, 1)})
        start = conv.weight.reshape(kernel_size)
        X4, Y4 = X.reshape(1, *X.shape, 1), Y.reshape(1, *Y.shape, 1)
        step = nn.value_and_grad(conv, lambda: ((conv(X4) - Y4) ** 2).sum())
        losses = []
        for _ in range(steps):
            loss, grads = step()
            conv.update({"weight": conv.weight - lr * grads["weight"]})
            mx.eval(loss, conv.parameters())
            losses.append(loss)
        return Trajectory(initial=start, losses=mx.stack(losses), kernel=conv.weight.reshape(kernel_size))

    def _conv_general(self, X, K, *, stride, dilation, padding, padding_mode, groups, layout="nchw"):
        mx = self.lib
        # MLX crops for a negative pad and reflects periodically past the edge: the spec's checks first.
        pads, _ = general_geometry(X.shape, K.shape, stride=stride, dilation=dilation, padding=padding,
                                   padding_mode=padding_mode, groups=groups, layout=layout)
        nhwc = layout == "nhwc"
        x = X if nhwc else mx.transpose(X, (0, 2, 3, 1))
        w = mx.transpose(K, (3, 0, 1, 2) if nhwc else (0, 2, 3, 1))  # HWIO or OIHW -> (C_out, kh, kw, C_in)
        (t, b), (le, r) = pads
        if padding_mode == "circular":
            x = mx.concatenate([x[:, x.shape[1] - t:], x, x[:, :b]], axis=1)
            x = mx.concatenate([x[:, :, x.shape[2] - le:], x, x[:, :, :r]], axis=2)
        elif padding_mode != "zeros":
            x = mx.pad(x, [(0, 0), (t, b), (le, r), (0, 0)], mode=self.PAD_MODES[padding_mode])
        native = ([t, le], [b, r]) if padding_mode == "zeros" else 0
        y = mx.conv_general(x, w, stride=list(stride), padding=native, kernel_dilation=list(dilation), groups=groups)
        return y if nhwc else mx.transpose(y, (0, 3, 1, 2))
    conv_general = _on_cpu(_conv_general)

    def conv_general_backprop(self, X, K, dY, **params):
        raise NotImplementedError("MLX has no explicit gradient functions for a convolution: its gradients are "
                                  "mx.vjp's (conv_general_vjp)")

    @_on_cpu
    def conv_general_vjp(self, X, K, dY, **params):
        _, (dX, dK) = self.lib.vjp(lambda x, k: self._conv_general(x, k, **params), [X, K], [dY])
        return dX, dK

    @_on_cpu
    def pool2d(self, X, *, kind, window, stride, padding, ceil_mode, count_include_pad):
        mx, nn = self.lib, self.nn
        pads, shape = pool_geometry(X.shape, kind=kind, window=window, stride=stride, padding=padding,
                                    ceil_mode=ceil_mode, count_include_pad=count_include_pad)
        (t, b), (le, r) = pads
        over = pool_overhang(X.shape, pads, window, stride, shape)
        x = mx.transpose(X, (0, 2, 3, 1))
        pool = nn.MaxPool2d if kind == "max" else nn.AvgPool2d
        symmetric = t == b and le == r and over == (0, 0)
        if symmetric and (kind == "max" or count_include_pad or (t, le) == (0, 0)):
            y = pool(tuple(window), tuple(stride), padding=(t, le))(x)
        elif kind == "max":
            full = [(0, 0), (t, b + over[0]), (le, r + over[1]), (0, 0)]
            y = nn.MaxPool2d(tuple(window), tuple(stride))(mx.pad(x, full, constant_values=-float("inf")))
        else:
            # Window sums over the zero-padded input, divided by the cells each window counts.
            sums = _window_sums(mx.pad(x, [(0, 0), (t, b + over[0]), (le, r + over[1]), (0, 0)]), window, stride)
            inside = mx.pad(mx.ones((1, *X.shape[2:], 1), dtype=X.dtype), [(0, 0), (t, b), (le, r), (0, 0)],
                            constant_values=1 if count_include_pad else 0)
            counts = _window_sums(mx.pad(inside, [(0, 0), (0, over[0]), (0, over[1]), (0, 0)]), window, stride)
            y = sums / counts
        # The spec's sizes crop: a ceil-mode window that starts past the input and the leading pad is dropped.
        return mx.transpose(y[:, :shape[2], :shape[3]], (0, 3, 1, 2))

    @_on_cpu
    def conv_transpose(self, X, K, *, stride, dilation, padding, output_padding):
        mx = self.lib
        crops, shape = transpose_geometry(X.shape, K.shape, stride=stride, dilation=dilation, padding=padding,
                                          output_padding=output_padding)
        (t, b), (le, r) = crops
        x, w = mx.transpose(X, (0, 2, 3, 1)), mx.transpose(K, (1, 2, 3, 0))  # IOHW -> (C_out, kh, kw, C_in)
        args = {"stride": tuple(stride), "dilation": tuple(dilation), "output_padding": tuple(output_padding)}
        if t == b and le == r and padding != "same":
            y = mx.conv_transpose2d(x, w, padding=(t, le), **args)
        else:
            y = mx.conv_transpose2d(x, w, padding=0, **args)
            y = y[:, t:y.shape[1] - b, le:y.shape[2] - r]
        return mx.transpose(y, (0, 3, 1, 2))


def _window_sums(x, window, stride):
    """Per NHWC window of ``x``, the sum of its cells: ``kh * kw`` strided slices of ``x``, added."""
    (kh, kw), (sh, sw) = window, stride
    oh, ow = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
    return sum(x[:, a:a + sh * (oh - 1) + 1:sh, e:e + sw * (ow - 1) + 1:sw] for a in range(kh) for e in range(kw))


@functools.cache
def _probe_conv(mx, dtype: str) -> bool | None:
    """Asked of MLX's CPU once per dtype: None if it cannot convolve in ``dtype``; else whether its convolution
    holds the dtype: in float64, that 1 + 2**-40 survives a 1x1 convolution by 1, and that a dilated, a grouped
    and a strided transposed convolution (MLX's second CPU path) run."""
    dt = getattr(mx, dtype)
    with mx.stream(mx.cpu):
        try:
            y = mx.conv2d(mx.array(np.full((1, 2, 2, 1), 1 + 2.0**-40), dtype=dt), mx.ones((1, 1, 1, 1), dt))
            mx.eval(y)
        except (ValueError, RuntimeError, TypeError):
            return None
        if dtype != "float64":
            return True
        x = mx.ones((1, 3, 3, 2), dt)
        try:
            mx.eval(mx.conv2d(x, mx.ones((2, 2, 2, 2), dt), dilation=2), mx.conv_transpose2d(
                x, mx.ones((1, 1, 1, 2), dt), stride=2), mx.conv2d(x, mx.ones((2, 1, 1, 1), dt), groups=2))
        except (ValueError, RuntimeError):
            return False
    return bool(np.array(y)[0, 0, 0, 0] == 1 + 2.0**-40)
