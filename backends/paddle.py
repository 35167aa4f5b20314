"""PaddlePaddle, eager: the book's ``corr2d`` writes by ``__setitem__`` (Paddle's autograd follows it); the built-in
op is ``F.conv2d`` (OIHW filters in both data formats); gradients from ``paddle.grad``; the book's ``Conv2D`` is a
``paddle.nn.Layer`` stepped by ``paddle.optimizer.SGD``; ``learn_kernel`` trains ``paddle.nn.Conv2D``.  Strict mode
turns the TF32 switches off and, where the build has the flags, cuDNN determinism on, reads each back, restores."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from backends import base
from backends.base import VERBS, Backend, Trajectory, confirm, output_shape

_FULL = ("float32", "float64")  # the dtypes with Paddle's CPU conv2d, pad3d, matmul and add kernels


class PaddleBackend(Backend):
    name = "paddle"
    contract = 2
    module = "paddle"
    # Measured on the CPU (paddlepaddle 3.3.1): conv2d, conv2d_transpose, pad3d, matmul, unfold, add and
    # pow have float32 and float64 kernels only ("Paddle support following DataTypes: float64, float32");
    # bfloat16 has multiply, sum, subtract and set_value (the book's corr2d and its autograd), float16
    # has pool2d.  A GPU build is not measured here: it is held to the same per-verb dtypes.
    dtypes = {device: ("float16", "bfloat16", "float32", "float64") for device in ("cpu", "gpu")}
    verbs = tuple(v for v in VERBS if v != "conv_general_backprop")
    verb_dtypes = {
        "corr2d": ("bfloat16", *_FULL), "receptive_field": ("bfloat16", *_FULL), "pool2d": ("float16", *_FULL),
        **{v: _FULL for v in ("conv2d", "corr2d_matmul", "conv2d_layer", "layer_step", "learn_kernel",
                              "conv_general", "conv_general_vjp", "conv_transpose")},
    }
    # F.conv2d(padding='SAME') drops the dilation (spec/xfails/paddle.txt).
    known_wrong = ((frozenset({"same", "dilation"}), "not reported"),
                   (frozenset({"pool_avg", "pool_asymmetric", "pool_include_pad"}),
                    "https://github.com/PaddlePaddle/Paddle/issues/54404"),
                   (frozenset({"transpose_same"}), "not reported"))
    conventions = {
        "valid": "native: F.conv2d(padding='VALID')",
        "explicit": "native: padding=[[0, 0], [0, 0], [top, bottom], [left, right]]",
        "same": "native: padding='SAME' (with dilation > 1 Paddle resets the dilation to 1: a known deviation)",
        "same_lower": "emulated: explicit pads with the extra pixel at the beginning (Paddle has no SAME_LOWER)",
        "same_strided": "native: padding='SAME' with stride=", "stride": "native: stride=",
        "dilation": "native: dilation=", "dilation_strided": "native",
        "channels": "native: NCHW input, OIHW weight", "groups": "native: groups=",
        "depthwise": "native: groups=C_in, weight (C_in*m, 1, kh, kw) (Paddle picks its depthwise kernel)",
        "reflect": "native: F.pad(mode='reflect'), then 'VALID'", "replicate": "native: F.pad(mode='replicate')",
        "symmetric": "emulated: paddle.concat of flipped edge slices (F.pad has no symmetric mode)",
        "circular": "native: F.pad(mode='circular')", "gradient": "native: paddle.grad",
        "layout_nhwc": "native: data_format='NHWC' (F.conv2d and F.pad); the HWIO kernel transposed to OIHW, "
                       "Paddle's filter layout in both formats",
        "subnormals": "kept in float32 and float64 (measured)", "pool_max": "native: F.max_pool2d",
        "pool_avg": "native: F.avg_pool2d", "pool_padding": "native: padding=",
        "pool_asymmetric": "native: padding=[t, b, l, r] (exclusive=False divides a window reaching into the "
                           "trailing pad by too few cells: Paddle#54404, "
                           "findings/paddle/avg_pool2d_asymmetric_include_pad; no fixed case shows it yet)",
        "pool_same": "native: padding='SAME' (TensorFlow's pads; counted by exclusive=False as asymmetric pads are)",
        "pool_include_pad": "native: exclusive=False", "pool_exclude_pad": "native: exclusive=True",
        "pool_ceil": "native: ceil_mode=True, where its size agrees; a plain ceil, so the last window that starts "
                     "past the input and the leading pad, which it keeps, is cropped",
        "transpose": "native: F.conv2d_transpose, weight (C_in, C_out, kh, kw)", "transpose_stride": "native: stride=",
        "transpose_dilation": "native: dilation=", "transpose_crop": "native: padding=[t, b, l, r], output_padding=",
        "transpose_same": "native: padding='SAME' (right on the fixed 2x2 cases only: a 3x3 input at stride 2 gives "
                          "5x5, not n*s, findings/paddle/conv2d_transpose_same_size.py)",
    }

    def gpu_unavailable_reason(self) -> str | None:
        paddle = self.lib
        if not paddle.device.is_compiled_with_cuda():
            return f"no GPU: paddle {paddle.__version__} is a CPU-only build (is_compiled_with_cuda() is False)"
        return None if paddle.device.cuda.device_count() else "no GPU: paddle.device.cuda.device_count() is 0"

    def device_description(self, device: str) -> str:
        return self.lib.device.cuda.get_device_name(0) if device == "gpu" else "cpu"

    #: Strict mode, where the build has them (a CPU build has only the last): (flag, value).
    STRICT_FLAGS = (("FLAGS_cudnn_deterministic", True), ("FLAGS_cudnn_exhaustive_search", False),
                    ("FLAGS_use_autotune", False))

    def _flags(self) -> tuple[tuple[str, Any], ...]:
        return tuple((name, value) for name, value in self.STRICT_FLAGS if name in self.lib.base.core.globals())

    @contextlib.contextmanager
    def numerics(self, device: str, dtype: str, precision: str = "strict") -> Iterator[None]:
        if precision != "strict":
            yield  # fast: Paddle's defaults, untouched
            return
        paddle, core, flags = self.lib, self.lib.base.core, self._flags()
        saved_flags = paddle.get_flags([name for name, _ in flags])
        saved_tf32 = (core.get_cudnn_switch(), core.get_cublas_switch())
        try:
            # Paddle's TF32 switches (cuDNN convolutions, cuBLAS matmuls): process-wide, off.
            for name in ("cudnn", "cublas"):
                getattr(core, f"set_{name}_switch")(False)
                confirm(f"paddle.base.core.get_{name}_switch()", False, getattr(core, f"get_{name}_switch")())
            for name, value in flags:
                paddle.set_flags({name: value})
                confirm(name, value, paddle.get_flags([name])[name])
            yield
        finally:
            paddle.set_flags(saved_flags)
            core.set_cudnn_switch(saved_tf32[0])
            core.set_cublas_switch(saved_tf32[1])

    def precision_settings(self) -> dict[str, Any]:
        core, flags = self.lib.base.core, [name for name, _ in self._flags()]
        return {"paddle.base.core.get_cudnn_switch()": core.get_cudnn_switch(),
                "paddle.base.core.get_cublas_switch()": core.get_cublas_switch(), **self.lib.get_flags(flags)}

    def global_state(self) -> dict[str, Any]:
        # What tests/globalstate.py does not read of Paddle itself (it reads the default dtype, the grad mode and
        # the CPU generator): the default device, which _on sets and restores, and the dygraph mode.
        return {"paddle.get_device()": self.lib.get_device(), "paddle.in_dynamic_mode()": self.lib.in_dynamic_mode()}

    def determinism(self, device: str, precision: str) -> str | None:
        if device == "cpu" or precision == "strict":
            return None
        return "fast mode keeps Paddle's defaults (FLAGS_cudnn_deterministic off), which do not promise repeatability"

    def _place(self, device: str) -> Any:
        return self.lib.CUDAPlace(0) if device == "gpu" else self.lib.CPUPlace()

    def asarray(self, a: np.ndarray, *, dtype: str, device: str) -> Any:
        return self.lib.to_tensor(np.ascontiguousarray(a), dtype=dtype, place=self._place(device))

    def to_numpy(self, x: Any) -> np.ndarray:
        if not isinstance(x, self.lib.Tensor):
            raise TypeError(f"not a paddle.Tensor: {type(x).__name__}")
        x = x.detach()
        if x.dtype == self.lib.bfloat16:  # .numpy() gives bfloat16 as its uint16 bits
            x = x.astype("float32")
        return np.array(x.cpu().numpy(), copy=True)

    def device_of(self, x: Any) -> str:
        return "gpu" if x.place.is_gpu_place() else "cpu"

    def dtype_of(self, x: Any) -> str:
        return str(x.dtype).removeprefix("paddle.")

    def corr2d(self, X: Any, K: Any) -> Any:
        h, w = K.shape
        Y = self.lib.zeros(output_shape(X.shape, K.shape), dtype=X.dtype).to(X.place)
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
        return Y

    def conv2d(self, X: Any, K: Any) -> Any:
        # F.conv2d returns an empty result for a kernel larger than the input (and MKL prints an error).
        output_shape(X.shape, K.shape)
        return self.lib.nn.functional.conv2d(X[None, None], K[None, None], padding="VALID")[0, 0]

    def corr2d_matmul(self, X: Any, K: Any) -> Any:
        oh, ow = output_shape(X.shape, K.shape)
        kh, kw = K.shape
        cols = self.lib.nn.functional.unfold(X[None, None], [kh, kw])[0]  # im2col: (kh*kw, oh*ow)
        return self.lib.matmul(K.reshape([1, kh * kw]), cols).reshape([oh, ow])

    def conv2d_layer(self, X: Any, K: Any, b: Any) -> Any:
        layer = self._layer(K.shape, dtype=X.dtype, place=X.place, values=(K, b))
        with self.lib.no_grad():
            return layer(X).detach()

    def layer_parameters(self, kernel_size, *, dtype, device):
        layer = self._layer(kernel_size, dtype=dtype, place=self._place(device))
        return {name: tuple(p.shape) for name, p in layer.named_parameters()}

    def layer_step(self, X: Any, K: Any, b: Any, Y: Any, *, lr: float) -> dict[str, Any]:
        paddle = self.lib
        layer = self._layer(K.shape, dtype=X.dtype, place=X.place, values=(K, b))
        optimizer = paddle.optimizer.SGD(learning_rate=lr, parameters=layer.parameters())
        ((layer(X) - Y) ** 2).sum().backward()
        optimizer.step()
        return {name: p.detach().clone() for name, p in layer.named_parameters()}

    def receptive_field(self, X: Any, K1: Any, K2: Any) -> tuple[Any, Any]:
        x = X.detach().clone()
        x.stop_gradient = False
        Y = self.corr2d(x, K1)
        dZ, = self.lib.grad(self.corr2d(Y, K2).sum(), x, retain_graph=True)
        dY00, = self.lib.grad(Y[0, 0], x)
        return dZ, dY00

    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        paddle = self.lib
        # paddle.seed reseeds the global generators: saved and restored around the layer's initialisation,
        # which runs on the CPU (the same kernel for a seed on every device).
        saved = paddle.get_rng_state("cpu")
        saved_cuda = paddle.get_cuda_rng_state() if paddle.device.is_compiled_with_cuda() else None
        try:
            with self._on("cpu"):
                paddle.seed(seed)
                conv2d = paddle.nn.Conv2D(1, 1, kernel_size, bias_attr=False)
        finally:
            paddle.set_rng_state(saved, "cpu")
            if saved_cuda is not None:
                paddle.set_cuda_rng_state(saved_cuda)
        conv2d.to(device=X.place, dtype=X.dtype)
        if initial is not None:
            conv2d.weight.set_value(initial.reshape(conv2d.weight.shape))
        start = conv2d.weight.detach().reshape(kernel_size).clone()
        X, Y = X.reshape([1, 1, *X.shape]), Y.reshape([1, 1, *Y.shape])
        losses = []
        for _ in range(steps):
            loss = ((conv2d(X) - Y) ** 2).sum()
            conv2d.clear_gradients()
            loss.backward()
            with paddle.no_grad():
                conv2d.weight.set_value(conv2d.weight - lr * conv2d.weight.grad)
            losses.append(loss.detach())
        return Trajectory(initial=start, losses=paddle.stack(losses),
                          kernel=conv2d.weight.detach().reshape(kernel_size).clone())

    def conv_general(self, X, K, *, stride, dilation, padding, padding_mode, groups, layout="nchw"):
        pads, _ = base.general_geometry(X.shape, K.shape, stride=stride, dilation=dilation, padding=padding,
                                        padding_mode=padding_mode, groups=groups, layout=layout)
        fmt = layout.upper()
        if layout == "nhwc":
            K = K.transpose([3, 2, 0, 1])  # HWIO -> OIHW: Paddle's filter layout in both data formats
        (t, b), (le, r) = pads
        if padding_mode != "zeros":
            X, native = self._pad(X, pads, padding_mode, fmt), "VALID"
        elif padding in ("valid", "same"):
            native = padding.upper()
        else:
            native = [[0, 0], [0, 0], [t, b], [le, r]] if fmt == "NCHW" else [[0, 0], [t, b], [le, r], [0, 0]]
        return self.lib.nn.functional.conv2d(X, K, stride=list(stride), padding=native, dilation=list(dilation),
                                             groups=groups, data_format=fmt)

    def _pad(self, X, pads, mode, fmt):
        (t, b), (le, r) = pads
        if mode != "symmetric":
            return self.lib.nn.functional.pad(X, [le, r, t, b], mode=mode, data_format=fmt)
        h_axis = 2 if fmt == "NCHW" else 1
        for axis, (lo, hi) in ((h_axis, (t, b)), (h_axis + 1, (le, r))):  # the edge rows, mirrored, stuck on
            n = X.shape[axis]
            parts = ([X.slice([axis], [0], [lo]).flip([axis])] if lo else []) + [X] + \
                ([X.slice([axis], [n - hi], [n]).flip([axis])] if hi else [])
            X = self.lib.concat(parts, axis=axis)
        return X

    def conv_general_vjp(self, X, K, dY, **params):
        x, k = X.detach().clone(), K.detach().clone()
        x.stop_gradient = k.stop_gradient = False
        dX, dK = self.lib.grad([self.conv_general(x, k, **params)], [x, k], grad_outputs=[dY])
        return dX, dK

    def conv_general_backprop(self, X, K, dY, **params):
        raise NotImplementedError("PaddlePaddle has no public explicit convolution gradient functions (no "
                                  "conv2d_input/conv2d_weight or conv2d_backprop_*; only the private "
                                  "paddle._C_ops.conv2d_grad); its gradients come through paddle.grad")

    def pool2d(self, X, *, kind, window, stride, padding, ceil_mode, count_include_pad):
        F = self.lib.nn.functional
        pads, shape = base.pool_geometry(X.shape, kind=kind, window=window, stride=stride, padding=padding,
                                         ceil_mode=ceil_mode, count_include_pad=count_include_pad)
        args = {"padding": "SAME" if padding == "same" else [p for pair in pads for p in pair],  # [t, b, l, r]
                "kernel_size": list(window), "stride": list(stride), "ceil_mode": ceil_mode}
        Y = F.max_pool2d(X, **args) if kind == "max" else F.avg_pool2d(X, exclusive=not count_include_pad, **args)
        # ceil_mode is a plain ceil: it keeps a last window that starts past the input and the leading pad,
        # which the spec's (torch's) rule drops: cropped to the spec's sizes.
        return Y[:, :, :shape[2], :shape[3]]

    def conv_transpose(self, X, K, *, stride, dilation, padding, output_padding):
        crops, _ = base.transpose_geometry(X.shape, K.shape, stride=stride, dilation=dilation, padding=padding,
                                           output_padding=output_padding)
        native = "SAME" if padding == "same" else [p for pair in crops for p in pair]  # [t, b, l, r]
        return self.lib.nn.functional.conv2d_transpose(X, K, stride=list(stride), padding=native,
                                                       dilation=list(dilation), output_padding=list(output_padding))

    @contextlib.contextmanager
    def _on(self, device: str) -> Iterator[None]:  # Paddle's default device (where new parameters are made)
        saved = self.lib.get_device()
        self.lib.set_device("gpu:0" if device == "gpu" else "cpu")
        try:
            yield
        finally:
            self.lib.set_device(saved)

    def _layer(self, kernel_size, *, dtype, place, values=None) -> Any:
        """The book's ``Conv2D`` (a U(0, 1) weight, a zero bias) in ``paddle.nn.Layer``: ``corr2d`` plus the bias."""
        paddle, corr2d = self.lib, self.corr2d

        class Conv2D(paddle.nn.Layer):
            def __init__(self):
                super().__init__()
                self.weight = self.create_parameter(list(kernel_size), dtype=dtype,
                                                    default_initializer=paddle.nn.initializer.Uniform(0.0, 1.0))
                self.bias = self.create_parameter([1], dtype=dtype, is_bias=True)

            def forward(self, x):
                return corr2d(x, self.weight) + self.bias

        with self._on("gpu" if place.is_gpu_place() else "cpu"):
            layer = Conv2D()
        for p, value in zip((layer.weight, layer.bias), values or (), strict=False):
            p.set_value(value)  # a copy of K and b, loaded
        return layer
