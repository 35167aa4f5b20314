"""MXNet 1.9, in NumPy mode: the chapter's MXNet tab, on the CPU and on CUDA ("gpu").

Loading the adapter calls ``npx.set_np()`` as the book does, so arrays are
``mxnet.np.ndarray``s and gluon makes NumPy-mode parameters; MXNet keeps that
mode per thread, so use the adapter from the thread that loaded it.  The
built-in op is ``npx.convolution`` on a ``(1, 1, H, W)`` view, gradients come
from ``autograd.record``, and ``learn_kernel`` trains ``gluon.nn.Conv2D``.

MXNet runs asynchronously: an operator's error (an unsupported dtype, say) can
surface only when its result is read, in :meth:`to_numpy`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from backends.base import (
    VERBS,
    Backend,
    Trajectory,
    confirm,
    general_geometry,
    pool_geometry,
    pool_overhang,
    transpose_geometry,
)


class MxnetBackend(Backend):
    name = "mxnet"
    contract = 2
    module = "mxnet"
    # No float16 on the CPU: MXNet's CPU convolution and matmul fail with "FP16
    # gemm on cpu not implemented".  mxnet.np has no bfloat16 at all.
    dtypes = {"cpu": ("float32", "float64"), "gpu": ("float16", "float32", "float64")}
    verbs = tuple(v for v in VERBS if v != "conv_general_backprop")
    _conv2d_class: Any = None
    # npx.deconvolution with stride and dilation on the same axes (spec/xfails/mxnet.txt).
    known_wrong = ((frozenset({"transpose", "transpose_stride", "transpose_dilation"}),
                    "https://github.com/apache/mxnet/issues/11203"),)
    conventions = {
        "valid": "native: npx.convolution(pad=(0, 0))",
        "explicit": "native: pad=(ph, pw) when symmetric; else mxnet.np.pad, then pad=(0, 0) (MXNet pads "
                    "symmetrically only, and accepts a negative pad silently: the geometry refuses first)",
        "same": "emulated: mxnet.np.pad with TensorFlow's pads (MXNet has no 'same')",
        "same_lower": "emulated: mxnet.np.pad, the extra pixel at the beginning",
        "same_strided": "emulated: mxnet.np.pad with TensorFlow's pads",
        "stride": "native: stride=", "dilation": "native: dilate=", "dilation_strided": "native",
        "channels": "native: NCHW input, OIHW weight (MXNet's CPU has no NHWC)",
        "groups": "native: num_group=", "depthwise": "native: num_group=C_in",
        "reflect": "native: mxnet.np.pad(mode='reflect'); for the gradient emulated by slices (np.pad's backward "
                   "supports only the constant mode)",
        "replicate": "native: mxnet.np.pad(mode='edge'); for the gradient emulated by slices",
        "symmetric": "native: mxnet.np.pad(mode='symmetric'); for the gradient emulated by slices",
        "circular": "emulated: mxnet.np.concatenate of wrapped slices (no wrap mode)",
        "gradient": "native: autograd.record and backward(dY)",
        "subnormals": "kept: IEEE 754 subnormals in every dtype (measured)",
        "layout_nhwc": "unsupported: npx.convolution(layout='NHWC') runs on the GPU only; the CPU raises 'Only support "
                       "NCW, NCHW and NCDHW layout' in float64 and a misleading 'dilated convolution' error in float32 "
                       "(apache/mxnet#21176, findings/mxnet/convolution_nhwc_cpu)",
        "pool_max": "native: npx.pooling(pool_type='max')", "pool_avg": "native: npx.pooling(pool_type='avg')",
        "pool_padding": "native: pad=(ph, pw)",
        "pool_asymmetric": "emulated: mxnet.np.pad (-inf for the maximum), then pad=(0, 0); an average as "
                           "pool_type='sum' over the cells counted",
        "pool_same": "emulated: mxnet.np.pad with TensorFlow's pads (pooling_convention='same' pools 1-D max only)",
        "pool_include_pad": "native: count_include_pad=True", "pool_exclude_pad": "native: count_include_pad=False",
        "pool_ceil": "native: pooling_convention='full', where its size agrees; emulated by padding where 'full' (a "
                     "plain ceil) keeps a last window that starts past the input and the leading pad "
                     "(findings/mxnet/pooling_full_window_past_pad)",
        "transpose": "native: npx.deconvolution, weight (C_in, C_out, kh, kw)", "transpose_stride": "native: stride=",
        "transpose_dilation": "native: dilate= (wrong together with a stride on the same axis: known_wrong)",
        "transpose_crop": "native: pad=p, adj=output_padding when the crop is symmetric; else sliced",
        "transpose_same": "emulated: TensorFlow's crop sliced off",
    }
    #: mxnet.np.pad's modes for the spec's padding modes (it has no wrap).
    PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "symmetric": "symmetric"}

    def load(self) -> Any:
        import os

        # cuDNN's default math runs float32 convolutions in TF32 on Ampere and
        # later and MXNet has no switch for it; NVIDIA's process-wide one must
        # be in the environment before cuDNN is loaded (an explicit value wins).
        os.environ.setdefault("NVIDIA_TF32_OVERRIDE", "0")
        # Likewise process-wide: no cuDNN autotuning, deterministic kernels only.
        os.environ.setdefault("MXNET_CUDNN_AUTOTUNE_DEFAULT", "0")
        os.environ.setdefault("MXNET_ENFORCE_DETERMINISM", "1")
        mx = super().load()
        mx.npx.set_np()
        return mx

    #: The process-wide switches :meth:`load` sets, as strict mode needs them.
    STRICT_ENV = {"NVIDIA_TF32_OVERRIDE": "0", "MXNET_CUDNN_AUTOTUNE_DEFAULT": "0", "MXNET_ENFORCE_DETERMINISM": "1"}

    @contextlib.contextmanager
    def numerics(self, device: str, dtype: str, precision: str = "strict") -> Iterator[None]:
        # MXNet has no runtime switch: strict mode can only confirm what load()
        # set.  The fast mode therefore runs with TF32 off as well (said in the
        # record's precision settings and in docs/gpu.md).
        if precision == "strict":
            for name, value in self.STRICT_ENV.items():
                confirm(f"os.environ[{name!r}]", value, os.environ.get(name))
        yield

    def precision_settings(self) -> dict[str, Any]:
        return {name: os.environ.get(name) for name in self.STRICT_ENV}

    def gpu_unavailable_reason(self) -> str | None:
        mx = self.lib
        if not mx.runtime.Features().is_enabled("CUDA"):
            return f"no GPU: mxnet {mx.__version__} is built without CUDA"
        try:
            if mx.context.num_gpus() == 0:
                return "no GPU: mx.context.num_gpus() is 0"
        except mx.base.MXNetError as exc:  # a broken driver raises here
            return f"no GPU: mx.context.num_gpus() raised {exc}"
        return None

    def device_description(self, device: str) -> str:
        if device != "gpu":
            return "cpu"
        # MXNet cannot name the GPU model; the compute capability is the closest it gets.
        cc = self.lib.util.get_cuda_compute_capability(self.lib.gpu(0))
        return f"gpu(0), CUDA compute capability {cc // 10}.{cc % 10}"

    # -- data across the boundary ----------------------------------------------

    def asarray(self, a: np.ndarray, *, dtype: str, device: str) -> Any:
        mx = self.lib
        return mx.np.array(a, dtype=dtype, ctx=mx.gpu(0) if device == "gpu" else mx.cpu())

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.asnumpy()  # a synchronising copy

    def device_of(self, x: Any) -> str:
        return "gpu" if x.ctx.device_type == "gpu" else "cpu"

    def dtype_of(self, x: Any) -> str:
        return np.dtype(x.dtype).name

    # -- verbs -----------------------------------------------------------------

    def corr2d(self, X: Any, K: Any) -> Any:
        h, w = K.shape
        _check_fits(X, K)  # a kernel one row too tall would give an empty Y, not an error
        Y = self.lib.np.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), dtype=X.dtype, ctx=X.ctx)
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
        return Y

    def conv2d(self, X: Any, K: Any) -> Any:
        # MXNet's shape inference raises itself when the kernel does not fit.
        return self.lib.npx.convolution(X.reshape(1, 1, *X.shape), K.reshape(1, 1, *K.shape),
                                        kernel=K.shape, num_filter=1, no_bias=True)[0, 0]

    def corr2d_matmul(self, X: Any, K: Any) -> Any:
        mnp, npx = self.lib.np, self.lib.npx
        _check_fits(X, K)  # gather_nd would report it only when the result is read
        (nh, nw), (kh, kw) = X.shape, K.shape
        oh, ow = nh - kh + 1, nw - kw + 1

        def arange(n):  # mxnet.np.arange is float32 by default
            return mnp.arange(n, dtype="int32", ctx=X.ctx)

        rows = arange(oh)[:, None, None, None] + arange(kh)[None, None, :, None]
        cols = arange(ow)[None, :, None, None] + arange(kw)[None, None, None, :]
        im2col = npx.gather_nd(X, mnp.stack(mnp.broadcast_arrays(rows, cols))).reshape(oh * ow, kh * kw)
        return mnp.matmul(im2col, K.reshape(kh * kw)).reshape(oh, ow)

    def conv2d_layer(self, X: Any, K: Any, b: Any) -> Any:
        layer = self._layer(K.shape, dtype=X.dtype, ctx=X.ctx)
        layer.weight.set_data(K)
        layer.bias.set_data(b)
        return layer(X)

    def layer_parameters(self, kernel_size, *, dtype, device):
        mx = self.lib
        layer = self._layer(kernel_size, dtype=dtype, ctx=mx.gpu(0) if device == "gpu" else mx.cpu())
        # gluon names parameters "<block prefix><name>", e.g. "conv2d0_weight".
        return {name.removeprefix(layer.prefix): p.shape for name, p in layer.collect_params().items()}

    def layer_step(self, X: Any, K: Any, b: Any, Y: Any, *, lr: float) -> dict[str, Any]:
        mx = self.lib
        # The forward through the built-in op: autograd does not follow the book's corr2d, which
        # writes into a buffer ("in-place operations are not supported when recording").
        layer = self._layer(K.shape, dtype=X.dtype, ctx=X.ctx, corr=self.conv2d)
        layer.weight.set_data(K)
        layer.bias.set_data(b)
        trainer = mx.gluon.Trainer(layer.collect_params(), "sgd", {"learning_rate": lr, "momentum": 0.0, "wd": 0.0})
        with mx.autograd.record():
            loss = ((layer(X) - Y) ** 2).sum()
        loss.backward()
        trainer.step(1)  # batch size 1: the gradient is not rescaled
        return {name.removeprefix(layer.prefix): p.data().copy() for name, p in layer.collect_params().items()}

    def conv_general(self, X, K, *, stride, dilation, padding, padding_mode, groups, layout="nchw",
                     _by_slices=False):
        mnp, npx = self.lib.np, self.lib.npx
        pads, _ = general_geometry(X.shape, K.shape, stride=stride, dilation=dilation, padding=padding,
                                   padding_mode=padding_mode, groups=groups, layout=layout)
        if layout == "nhwc":  # MXNet's NHWC kernel is (C_out, kh, kw, C_in/groups): OHWI
            (t, b), (le, r) = pads
            if padding_mode != "zeros" or t != b or le != r:
                raise ValueError("this adapter gives channels-last with symmetric zero pads only")
            Y = npx.convolution(X, mnp.transpose(K, (3, 0, 1, 2)), kernel=K.shape[:2], stride=tuple(stride),
                                dilate=tuple(dilation), pad=(t, le), num_filter=K.shape[3], num_group=groups,
                                no_bias=True, layout="NHWC")
            Y.wait_to_read()  # MXNet's engine is asynchronous: the CPU's refusal surfaces here, inside the verb
            return Y
        (t, b), (le, r) = pads
        native = (0, 0)
        if padding_mode == "zeros" and t == b and le == r:
            native = (t, le)
        elif padding_mode == "circular" or (_by_slices and padding_mode != "zeros"):
            X = _pad_by_slices(mnp, X, pads, padding_mode)
        else:
            X = mnp.pad(X, ((0, 0), (0, 0), (t, b), (le, r)), mode=self.PAD_MODES[padding_mode])
        return npx.convolution(X, K, kernel=K.shape[2:], stride=tuple(stride), dilate=tuple(dilation), pad=native,
                               num_filter=K.shape[0], num_group=groups, no_bias=True)

    def pool2d(self, X, *, kind, window, stride, padding, ceil_mode, count_include_pad):
        # The spec's sizes crop the result: with ceil sizes, a trailing pad can hold a last window that starts
        # past the input (dropped by the spec's rule), which pooling the padded input keeps.
        _, shape = pool_geometry(X.shape, kind=kind, window=window, stride=stride, padding=padding,
                                 ceil_mode=ceil_mode, count_include_pad=count_include_pad)
        Y = self._pool2d(X, kind=kind, window=window, stride=stride, padding=padding, ceil_mode=ceil_mode,
                         count_include_pad=count_include_pad)
        return Y[:, :, :shape[2], :shape[3]]

    def _pool2d(self, X, *, kind, window, stride, padding, ceil_mode, count_include_pad):
        mnp, npx = self.lib.np, self.lib.npx
        pads, shape = pool_geometry(X.shape, kind=kind, window=window, stride=stride, padding=padding,
                                    ceil_mode=ceil_mode, count_include_pad=count_include_pad)
        (t, b), (le, r) = pads
        args = {"kernel": tuple(window), "stride": tuple(stride)}
        convention = "full" if ceil_mode else "valid"
        # 'full' is a plain ceil: it keeps a last window that starts past the input and the leading pad,
        # which the spec (torch's rule) drops.  Where the two sizes differ, the overhang is padded instead.
        (h, w), (kh, kw), (sh, sw), (ho, wo) = X.shape[2:], window, stride, shape[2:]
        plain = [-(-(n + lo + hi - k) // s_) + 1 for n, (lo, hi), k, s_ in zip((h, w), pads, (kh, kw), (sh, sw),
                                                                            strict=True)]
        if ceil_mode and plain != [ho, wo]:
            over = pool_overhang(X.shape, pads, window, stride, shape)
            b, r, convention = b + over[0], r + over[1], "valid"
            if kind == "avg":  # the overhang is outside the padded extent: never counted
                return self._sums_over_counts(X, (t, b), (le, r), over, count_include_pad, args)
        # MXNet's 'same' convention pools 1-D max only ("Currently 'same' supports Max Pooling 1-D"): the
        # spec's pads instead, below.
        if t == b and le == r and padding != "same":
            return npx.pooling(X, pool_type=kind, pad=(t, le), pooling_convention=convention,
                               count_include_pad=count_include_pad, **args)
        if kind == "max":
            Xp = _pad_with(mnp, X, (t, b), (le, r), -np.inf)
            return npx.pooling(Xp, pool_type="max", pooling_convention=convention, **args)
        return self._sums_over_counts(X, (t, b), (le, r), (0, 0), count_include_pad, {**args, "pooling_convention":
                                                                                          convention})

    def _sums_over_counts(self, X, rows, cols, over, count_include_pad, args):
        """An average as pool_type='sum' window sums over zero padding, divided by the cells counted: the
        padded ones (``count_include_pad``) or the input's, never the ``over`` cells past the padded extent."""
        mnp, npx = self.lib.np, self.lib.npx
        (t, b), (le, r) = rows, cols
        sums = npx.pooling(mnp.pad(X, ((0, 0), (0, 0), (t, b), (le, r))), pool_type="sum", **args)
        inside = _pad_with(mnp, mnp.ones((1, 1, *X.shape[2:]), dtype=X.dtype, ctx=X.ctx), (t, b - over[0]),
                           (le, r - over[1]), 1.0 if count_include_pad else 0.0)
        inside = mnp.pad(inside, ((0, 0), (0, 0), (0, over[0]), (0, over[1])))
        return sums / npx.pooling(inside, pool_type="sum", **args)

    def conv_transpose(self, X, K, *, stride, dilation, padding, output_padding):
        npx = self.lib.npx
        crops, _ = transpose_geometry(X.shape, K.shape, stride=stride, dilation=dilation, padding=padding,
                                      output_padding=output_padding)
        (t, b), (le, r) = crops
        args = {"kernel": K.shape[2:], "stride": tuple(stride), "dilate": tuple(dilation), "adj": tuple(output_padding),
                "num_filter": K.shape[1], "no_bias": True}
        if t == b and le == r and padding != "same":
            return npx.deconvolution(X, K, pad=(t, le), **args)
        Y = npx.deconvolution(X, K, pad=(0, 0), **args)
        return Y[:, :, t:Y.shape[2] - b, le:Y.shape[3] - r]

    def conv_general_backprop(self, X, K, dY, **params):
        raise NotImplementedError("MXNet exposes no explicit gradient functions for a convolution: "
                                  "its gradients are autograd's (conv_general_vjp)")

    def conv_general_vjp(self, X, K, dY, **params):
        autograd = self.lib.autograd
        x, k = X.copy(), K.copy()
        x.attach_grad()
        k.attach_grad()
        with autograd.record():
            # mxnet.np.pad has a backward for the constant mode only ("Other modes are not supported"):
            # the other modes by slices, which autograd follows.
            Y = self.conv_general(x, k, **params, _by_slices=True)
        Y.backward(dY)
        return x.grad, k.grad

    def receptive_field(self, X: Any, K1: Any, K2: Any) -> tuple[Any, Any]:
        autograd = self.lib.autograd
        x = X.copy()
        x.attach_grad()
        with autograd.record():
            Y = self.conv2d(x, K1)
            Z = self.conv2d(Y, K2)
            z, y00 = Z.sum(), Y[0, 0]
        z.backward(retain_graph=True)
        dZ = x.grad.copy()  # the next backward overwrites x.grad
        y00.backward()
        return dZ, x.grad

    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        mx = self.lib
        # in_channels makes initialisation immediate, so the kernel can be
        # read back before the first step.
        conv2d = mx.gluon.nn.Conv2D(1, kernel_size=kernel_size, use_bias=False, in_channels=1)
        mx.random.seed(seed)  # global: MXNet has no RNG state to save and restore
        # Gluon initialises on the CPU (the same kernel on every device) and its
        # NumPy-mode initialisers fill float32 only, so draw, then cast.
        conv2d.initialize(ctx=X.ctx)
        conv2d.cast(X.dtype)
        weight = conv2d.weight
        if initial is not None:
            weight.set_data(initial.reshape(weight.shape))
        start = weight.data().reshape(kernel_size).copy()
        X, Y = X.reshape(1, 1, *X.shape), Y.reshape(1, 1, *Y.shape)
        losses = mx.np.zeros(steps, dtype=X.dtype, ctx=X.ctx)
        for i in range(steps):
            with mx.autograd.record():
                l = ((conv2d(X) - Y) ** 2).sum()
            l.backward()
            weight.data()[:] -= lr * weight.grad()
            losses[i] = l
        return Trajectory(initial=start, losses=losses, kernel=weight.data().reshape(kernel_size).copy())

    def _layer(self, kernel_size, *, dtype, ctx, corr: Any = None) -> Any:
        """The book's ``Conv2D``, defined on first use because it subclasses ``nn.Block``; its
        forward is ``corr`` (default: the book's ``corr2d``)."""
        if self._conv2d_class is None:
            nn = self.lib.gluon.nn

            class Conv2D(nn.Block):
                def __init__(self, kernel_size, corr, **kwargs):
                    super().__init__(**kwargs)
                    self.weight = self.params.get("weight", shape=kernel_size)
                    self.bias = self.params.get("bias", shape=(1,))
                    self.corr = corr

                def forward(self, x):
                    return self.corr(x, self.weight.data()) + self.bias.data()

            self._conv2d_class = Conv2D
        layer = self._conv2d_class(kernel_size, corr or self.corr2d)
        layer.initialize(ctx=ctx)
        layer.cast(dtype)  # after initialize: see learn_kernel
        return layer


def _check_fits(X: Any, K: Any) -> None:
    if K.shape[0] > X.shape[0] or K.shape[1] > X.shape[1]:
        raise ValueError(f"kernel {tuple(K.shape)} is larger than the input {tuple(X.shape)}")


def _pad_by_slices(mnp, X, pads, mode):
    """NCHW ``X`` padded on H and W in a non-zero ``mode`` from slices, flips and concatenations."""
    for axis, (lo, hi) in ((2, pads[0]), (3, pads[1])):
        n = X.shape[axis]

        def take(start, stop, X=X, axis=axis):
            index = [slice(None)] * 4
            index[axis] = slice(start, stop)
            return X[tuple(index)]

        if mode == "circular":
            parts = [take(n - lo, n), X, take(0, hi)]
        elif mode == "replicate":
            parts = [mnp.repeat(take(0, 1), lo, axis=axis), X, mnp.repeat(take(n - 1, n), hi, axis=axis)]
        elif mode == "reflect":
            parts = [mnp.flip(take(1, lo + 1), axis=axis), X, mnp.flip(take(n - 1 - hi, n - 1), axis=axis)]
        else:  # symmetric
            parts = [mnp.flip(take(0, lo), axis=axis), X, mnp.flip(take(n - hi, n), axis=axis)]
        X = mnp.concatenate([p for p in parts if p.shape[axis]], axis=axis)
    return X


def _pad_with(mnp, X, rows: tuple[int, int], cols: tuple[int, int], value: float):
    """``X`` (N, C, H, W) padded with ``value`` by concatenation: MXNet 1.9.1's ``np.pad(mode='constant')``
    ignores ``constant_values`` and always pads zeros (measured: -inf, -5, 7 and 1 all gave 0; found by
    the generated pooling property, whose negative inputs a zero pad outgrows under max pooling;
    findings/mxnet/np_pad_ignores_constant_values)."""
    (t, b), (le, r) = rows, cols
    n, c, h, w = X.shape

    def block(height, width):
        return mnp.full((n, c, height, width), value, dtype=X.dtype, ctx=X.ctx)

    X = mnp.concatenate([block(t, w), X, block(b, w)], axis=2) if t or b else X
    h = X.shape[2]
    return mnp.concatenate([block(h, le), X, block(h, r)], axis=3) if le or r else X
