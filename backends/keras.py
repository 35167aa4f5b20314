"""Keras 3 (keras.ops, keras.layers) on three engines: "keras-torch", "keras-jax", "keras-tensorflow"; keras picks its
engine at import from ``KERAS_BACKEND`` (set by ``load``).  Every verb is keras.ops / keras.layers / keras.optimizers,
but for the gradients, the engine's own autodiff (keras.ops has none: ``_value_and_grad``, one per engine), and
``numerics``, the engine adapter's.  Where keras disagrees with itself across engines, that shows."""

import contextlib
import functools
import os
import sys
from typing import Any

import numpy as np

from backends import base
from backends.base import VERBS, Backend, BackendUnavailable, Trajectory
from backends.jax import JaxBackend
from backends.tensorflow import TensorflowBackend
from backends.torch import TorchBackend

P, V = "keras.ops.pad", "then 'valid'"  # for the conventions' words


def _on_device(verb):  # a verb under keras.device of its first array: what keras.ops makes lies with the inputs
    @functools.wraps(verb)
    def run(self, X, *args, **kwargs):
        scoped, self._scoped = self.__dict__.get("_scoped"), True  # inside a verb, perhaps in a trace: keep it
        try:
            with contextlib.nullcontext() if scoped else self.lib.device(self.device_of(X)):
                return verb(self, X, *args, **kwargs)
        finally:
            self._scoped = scoped
    return run


class KerasBackend(Backend):
    name = None  # the base class: not registered; the engines below are (each sets engine and engine_adapter)
    module = "keras"
    contract = 2
    dtypes = {"cpu": ("float16", "bfloat16", "float32", "float64")}  # measured on each engine
    verbs = tuple(v for v in VERBS if v != "conv_general_backprop")
    conventions = {
        "valid": "native: keras.ops.conv(padding='valid')", "same": "native: keras.ops.conv(padding='same')",
        "explicit": f"emulated: {P} with zeros, {V} (keras.ops.conv has only 'valid' and 'same')",
        "same_lower": f"emulated: {P}, the extra pixel first, {V}", "same_strided": "native: 'same' with strides=",
        "stride": "native: strides=", "dilation": "native: dilation_rate=", "dilation_strided": "native",
        "channels": "native: data_format='channels_first', HWIO kernel", "layout_nhwc": "native: 'channels_last'",
        "groups": "native: keras.ops.conv, kernel in-channels C_in / groups", "depthwise": "native: depthwise_conv",
        "reflect": f"native: {P}(mode='reflect')", "symmetric": f"native: {P}(mode='symmetric')", "replicate":
        "emulated: keras.ops.take of edge indices", "circular": "emulated: keras.ops.take of wrapped indices (pad's "
        "'edge' and 'wrap' are not on every engine)", "gradient": "native: the engine's autodiff (keras.ops has none)",
        "subnormals": "as flushes_subnormals says", "pool_max": "native: keras.ops.max_pool", "pool_avg":
        "native: keras.ops.average_pool", "pool_same": "native: padding='same'", "pool_asymmetric": "as pool_padding",
        "pool_padding": f"emulated: {P} (-inf for the maximum), {V}", "pool_exclude_pad": "native for 'same'; else "
        "as pool_include_pad", "pool_include_pad": "emulated: window sums (keras.ops.conv, ones kernel) / cells",
        "pool_ceil": f"emulated: {P} past the padded extent (no ceil mode), never picked nor counted",
        "transpose": "native: keras.ops.conv_transpose, kernel (kh, kw, C_out, C_in)", "transpose_same": "native",
        "transpose_stride": "native: strides=", "transpose_dilation": "native: dilation_rate=",
        "transpose_crop": "emulated: 'valid' with output_padding=, the crop sliced off (keras crops 'same' only)"}

    _engine = functools.cached_property(lambda self: self.engine_adapter())  # the engine's own adapter

    def load(self) -> Any:
        if (keras := sys.modules.get("keras")) is not None and keras.backend.backend() != self.engine:
            raise BackendUnavailable(f"backend {self.name!r}: keras runs on {keras.backend.backend()!r} in this "
                                     f"process (its engine is chosen at import), not on {self.engine!r}")
        os.environ["KERAS_BACKEND"] = self.engine
        self._engine.load()  # the engine's own process-wide setup (XLA flags, cuBLAS), before keras imports it
        return super().load()

    def version(self) -> str: return f"{self.lib.__version__} ({self.engine} {self._engine.lib.__version__})"
    def numerics(self, device, dtype, precision="strict"): return self._engine.numerics(device, dtype, precision)
    def precision_settings(self) -> dict[str, Any]: return self._engine.precision_settings()
    def determinism(self, device, precision) -> str | None: return self._engine.determinism(device, precision)
    ops = property(lambda self: self.lib.ops)

    def asarray(self, a: np.ndarray, *, dtype: str, device: str) -> Any:
        with self.lib.device(device):
            x = self.ops.convert_to_tensor(np.array(a), dtype=dtype)  # np.array: a copy, never an alias
        if self.dtype_of(x) != dtype:  # keras-jax makes float32 of float64 (a warning) without x64
            raise TypeError(f"keras.ops.convert_to_tensor(dtype={dtype!r}) made {self.dtype_of(x)}")
        return x

    def to_numpy(self, x: Any) -> np.ndarray:
        if not self.ops.is_tensor(x):
            raise TypeError(f"not a {self.engine} tensor: {type(x).__name__}")
        return np.array(self.ops.convert_to_numpy(self.ops.cast(x, "float32") if self.dtype_of(x) == "bfloat16" else x))

    def device_of(self, x: Any) -> str:
        where = str(x.device).lower()  # torch "cpu"/"cuda:0", jax "TFRT_CPU_0", tf ".../device:CPU:0"
        return "gpu" if "cuda" in where or "gpu" in where else "cpu" if "cpu" in where else where

    def dtype_of(self, x: Any) -> str:
        return self.lib.backend.standardize_dtype(x.dtype)  # "float32", ... whatever the engine

    @_on_device
    def corr2d(self, X: Any, K: Any) -> Any:
        ops, (h, w) = self.ops, K.shape
        Y = ops.zeros(base.output_shape(X.shape, K.shape), dtype=self.dtype_of(X))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                total = ops.sum(ops.multiply(ops.slice(X, (i, j), (h, w)), K))
                Y = ops.slice_update(Y, (i, j), ops.reshape(total, (1, 1)))
        return Y

    @_on_device
    def conv2d(self, X: Any, K: Any) -> Any:
        ops, shape = self.ops, base.output_shape(X.shape, K.shape)  # NHWC image, HWIO kernel
        return ops.reshape(ops.conv(ops.reshape(X, (1, *X.shape, 1)), ops.reshape(K, (*K.shape, 1, 1))), shape)

    @_on_device
    def corr2d_matmul(self, X: Any, K: Any) -> Any:
        ops, (kh, kw), (oh, ow) = self.ops, K.shape, base.output_shape(X.shape, K.shape)
        # Column (i, j) of im2col: the input shifted by (i, j), element (i, j) of every window.
        im2col = ops.stack([ops.reshape(ops.slice(X, (i, j), (oh, ow)), (oh * ow,))
                            for i in range(kh) for j in range(kw)], axis=1)
        return ops.reshape(ops.matmul(im2col, ops.reshape(K, (kh * kw, 1))), (oh, ow))

    def _book_conv2d(self, kernel_size, dtype: str, corr: Any = None) -> Any:
        """The book's ``Conv2D`` as a ``keras.layers.Layer``; its forward is ``corr`` (default: ``corr2d``)."""
        keras, corr2d = self.lib, corr or self.corr2d

        class Conv2D(keras.layers.Layer):
            def __init__(self, kernel_size, **kwargs):  # the book's: the weights made in the constructor
                super().__init__(**kwargs)
                self.weight = self.add_weight(name="weight", shape=tuple(kernel_size), initializer="random_uniform")
                self.bias = self.add_weight(name="bias", shape=(1,), initializer="zeros")
                self.built = True  # its weights exist: no build() from an input shape

            def call(self, x):
                return keras.ops.add(corr2d(x, self.weight), self.bias)

        return Conv2D(kernel_size, dtype=dtype)

    @_on_device
    def conv2d_layer(self, X: Any, K: Any, b: Any) -> Any:
        layer = self._book_conv2d(K.shape, self.dtype_of(X))
        layer.set_weights([K, b])  # in the order build() adds them: weight, bias
        return layer(X)

    def layer_parameters(self, kernel_size, *, dtype, device):
        with self.lib.device(device):  # as keras enumerates them
            return {w.name: tuple(w.shape) for w in self._book_conv2d(kernel_size, dtype).trainable_weights}

    @_on_device
    def layer_step(self, X: Any, K: Any, b: Any, Y: Any, *, lr: float) -> dict[str, Any]:
        ops = self.ops  # the forward through the built-in op, as on every framework (corr2d writes into a buffer)
        layer = self._book_conv2d(K.shape, self.dtype_of(X), corr=self.conv2d)
        layer.set_weights([K, b])
        weights = layer.trainable_weights  # as keras enumerates them
        _, grads = self._value_and_grad(lambda *values: ops.sum(ops.square(ops.subtract(
            layer.stateless_call(list(values), [], X)[0], Y))), *(w.value for w in weights))
        self.lib.optimizers.SGD(learning_rate=lr).apply(list(grads), weights)
        return {w.name: ops.copy(ops.convert_to_tensor(w)) for w in weights}

    @_on_device
    def receptive_field(self, X: Any, K1: Any, K2: Any) -> tuple[Any, Any]:
        ops, corr = self.ops, self.conv2d
        _, (dZ,) = self._value_and_grad(lambda x: ops.sum(corr(corr(x, K1), K2)), X)
        _, (dY00,) = self._value_and_grad(lambda x: ops.reshape(ops.slice(corr(x, K1), (0, 0), (1, 1)), ()), X)
        return dZ, dY00

    @_on_device
    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        keras, ops = self.lib, self.ops
        conv = keras.layers.Conv2D(1, kernel_size, use_bias=False, padding="valid", dtype=self.dtype_of(X),
                                   kernel_initializer=keras.initializers.GlorotUniform(seed=seed))  # no global RNG
        X4, Y4 = ops.reshape(X, (1, *X.shape, 1)), ops.reshape(Y, (1, *Y.shape, 1))  # NHWC
        conv.build(X4.shape)
        if initial is not None:
            conv.kernel.assign(ops.reshape(initial, (*kernel_size, 1, 1)))
        start, losses = ops.reshape(ops.copy(ops.convert_to_tensor(conv.kernel)), kernel_size), []
        for _ in range(steps):
            value, (grad,) = self._value_and_grad(lambda k: ops.sum(ops.square(ops.subtract(
                conv.stateless_call([k], [], X4)[0], Y4))), conv.kernel.value)  # the engine's own tensor
            conv.kernel.assign(ops.subtract(conv.kernel.value, ops.multiply(lr, grad)))
            losses.append(value)
        return Trajectory(start, ops.stack(losses), ops.reshape(ops.convert_to_tensor(conv.kernel), kernel_size))

    @_on_device
    def conv_general(self, X, K, *, stride, dilation, padding, padding_mode, groups, layout="nchw"):
        ops = self.ops
        pads, _ = base.general_geometry(X.shape, K.shape, stride=stride, dilation=dilation, padding=padding,
                                        padding_mode=padding_mode, groups=groups, layout=layout)
        nhwc = layout == "nhwc"
        k = K if nhwc else ops.transpose(K, (2, 3, 1, 0))  # keras' kernel is HWIO in both data formats
        native = padding if padding_mode == "zeros" and padding in ("valid", "same") else "valid"
        if (native != padding or padding_mode != "zeros") and any(map(any, pads)):  # explicit, same_lower, a mode
            X = self._pad(X, pads, "constant" if padding_mode == "zeros" else padding_mode, (1, 2) if nhwc else (2, 3))
        cin = X.shape[3 if nhwc else 1]
        args = {"strides": tuple(stride), "padding": native, "dilation_rate": tuple(dilation),
                "data_format": "channels_last" if nhwc else "channels_first"}
        if groups > 1 and groups == cin:  # (kh, kw, 1, C_in * m) -> (kh, kw, C_in, m): output channel c*m + j
            kh, kw, _, cout = k.shape
            return ops.depthwise_conv(X, ops.reshape(k, (kh, kw, cin, cout // cin)), **args)
        return ops.conv(X, k, **args)

    def _pad(self, x, pads, mode, axes):
        ops = self.ops
        if mode in ("constant", "reflect", "symmetric"):
            return ops.pad(x, [(0, 0), (0, 0), *pads] if axes == (2, 3) else [(0, 0), *pads, (0, 0)], mode=mode)
        for axis, (lo, hi) in zip(axes, pads, strict=True):  # replicate / circular: the edge's / wrapped indices
            n = x.shape[axis]
            x = ops.take(x, [min(max(i, 0), n - 1) if mode == "replicate" else i % n for i in range(-lo, n + hi)], axis)
        return x

    @_on_device
    def conv_general_vjp(self, X, K, dY, **params):
        ops = self.ops
        return self._value_and_grad(lambda x, k: ops.sum(ops.multiply(self.conv_general(x, k, **params), dY)),
                                    X, K)[1]

    def conv_general_backprop(self, X, K, dY, **params):
        raise NotImplementedError("Keras has no explicit gradient functions for a convolution (keras.ops has no "
                                  "conv backprop ops): its gradients are the engine's autodiff (conv_general_vjp)")

    @_on_device
    def pool2d(self, X, *, kind, window, stride, padding, ceil_mode, count_include_pad):
        ops, dtype, fmt = self.ops, self.dtype_of(X), "channels_first"
        pads, shape = base.pool_geometry(X.shape, kind=kind, window=window, stride=stride, padding=padding,
                                         ceil_mode=ceil_mode, count_include_pad=count_include_pad)
        if not ceil_mode and (padding == "valid" or (padding == "same" and (kind == "max" or not count_include_pad))):
            return (ops.max_pool if kind == "max" else ops.average_pool)(X, window, stride, padding, fmt)
        # Pads by hand; the spec's sizes crop the result (a ceil-sized pad can hold a window past the input).
        over = base.pool_overhang(X.shape, pads, window, stride, shape)
        full = [(0, 0), (0, 0), (pads[0][0], pads[0][1] + over[0]), (pads[1][0], pads[1][1] + over[1])]
        if kind == "max":
            y = ops.max_pool(ops.pad(X, full, constant_values=float("-inf")), window, stride, "valid", fmt)
            return ops.slice(y, (0, 0, 0, 0), shape)
        # An average: window sums (every channel an image of its own, a ones kernel) over the cells counted.
        (n, c, h, w), ones, padded = X.shape, ops.ones((*window, 1, 1), dtype=dtype), ops.pad(X, full)
        sums = ops.conv(ops.reshape(padded, (n * c, 1, *padded.shape[2:])), ones, stride, data_format=fmt)
        inside = ops.pad(ops.ones((1, 1, h, w), dtype), [(0, 0), (0, 0), *pads], constant_values=int(count_include_pad))
        counts = ops.conv(ops.pad(inside, [(0, 0), (0, 0), (0, over[0]), (0, over[1])]), ones, stride, data_format=fmt)
        return ops.slice(ops.divide(ops.reshape(sums, (n, c, *sums.shape[2:])), counts), (0, 0, 0, 0), shape)

    @_on_device
    def conv_transpose(self, X, K, *, stride, dilation, padding, output_padding):
        ops = self.ops
        crops, shape = base.transpose_geometry(X.shape, K.shape, stride=stride, dilation=dilation, padding=padding,
                                               output_padding=output_padding)
        k = ops.transpose(K, (2, 3, 1, 0))  # keras' transposed kernel: (kh, kw, C_out, C_in)
        y = ops.conv_transpose(X, k, padding="same" if padding == "same" else "valid", strides=tuple(stride),
                               output_padding=None if padding == "same" else tuple(output_padding),
                               data_format="channels_first", dilation_rate=tuple(dilation))
        return y if padding == "same" else ops.slice(y, (0, 0, crops[0][0], crops[1][0]), shape)


class KerasTorchBackend(KerasBackend):  # _value_and_grad: fn(*args), a scalar, and its gradients by autodiff
    name, engine, engine_adapter = "keras-torch", "torch", TorchBackend
    flushes_subnormals = property(lambda self: self._engine.flushes_subnormals)  # torch's probe of this CPU
    # findings/keras/torch_symmetric_pad_is_replicate; findings/keras/torch_reflect_pad_last_axis_only (no fixed case)
    known_wrong = ((frozenset({"symmetric"}), "https://github.com/keras-team/keras/pull/23230"),)

    def _value_and_grad(self, fn, *args):
        torch = self._engine.lib
        args = [a.detach().clone().requires_grad_() for a in args]
        with torch.enable_grad():
            value = fn(*args)
            return value.detach(), torch.autograd.grad(value, args, allow_unused=True, materialize_grads=True)


class KerasJaxBackend(KerasBackend):
    name, engine, engine_adapter = "keras-jax", "jax", JaxBackend
    flushes_subnormals = {"cpu": ("float32", "bfloat16")}

    def _value_and_grad(self, fn, *args):
        return self._engine.lib.value_and_grad(fn, argnums=tuple(range(len(args))))(*args)


class KerasTensorflowBackend(KerasBackend):
    name, engine, engine_adapter = "keras-tensorflow", "tensorflow", TensorflowBackend
    flushes_subnormals = {"cpu": ("float32", "bfloat16")}
    conventions = {**KerasBackend.conventions, "dilation_strided": "unsupported: keras.ops.conv raises for strides > 1 "
                   "with dilation_rate > 1 (keras#23028; findings/keras/tensorflow_conv_strides_with_dilation_refused)"}
    known_wrong = ((frozenset({"depthwise", "stride"}), "findings/keras/tensorflow_depthwise_bfloat16_unequal_strides"),)  # noqa: E501

    def load(self) -> Any:
        lib = super().load()
        # channels_first reaches TF's CPU conv as NCHW, which it runs only with oneDNN (on by itself on some CPUs) and
        # never in float64 (findings/keras/tensorflow_channels_first_float64_refused): asked of keras once per dtype.
        held = tuple(d for d in self.dtypes["cpu"] if _takes_nchw(lib, d))
        self.verb_dtypes = dict.fromkeys(("conv_general", "conv_general_vjp", "pool2d", "conv_transpose"), held)
        return lib

    def _value_and_grad(self, fn, *args):
        tf = self._engine.lib
        with tf.GradientTape() as tape:
            tape.watch(args)
            value = fn(*args)
        return value, tuple(tape.gradient(value, list(args), unconnected_gradients=tf.UnconnectedGradients.ZERO))


def _takes_nchw(keras, dtype: str) -> bool:  # keras.ops.conv, conv_transpose(data_format='channels_first') run?
    x, k, cf = keras.ops.ones((1, 1, 2, 2), dtype), keras.ops.ones((1, 1, 1, 1), dtype), "channels_first"
    try:
        with keras.device("cpu"):
            return keras.ops.conv_transpose(keras.ops.conv(x, k, data_format=cf), k, data_format=cf) is not None
    except Exception:  # TF's InvalidArgumentError or UnimplementedError, whatever the build
        return False
