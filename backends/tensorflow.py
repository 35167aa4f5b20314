"""TensorFlow, with its bundled Keras for the layers: the chapter's TensorFlow tab.

The book's ``corr2d`` fills a ``tf.Variable`` by sliced ``assign``; the
built-in op is ``tf.nn.conv2d``, which wants NHWC images and
``(kh, kw, in, out)`` kernels, so the adapter adds those axes and drops them
again.  Eager TensorFlow runs an op on the GPU whenever there is one, wherever
its inputs live, so every verb runs under ``tf.device`` of its input.
In the strict precision mode :meth:`numerics` turns TF32 off and op
determinism on, reads both back, and restores them after the test.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import numpy as np

from backends.base import (
    VERBS,
    Backend,
    Trajectory,
    confirm,
    general_geometry,
    output_shape,
    pool_geometry,
    pool_overhang,
    transpose_geometry,
)

_DEVICE_NAMES = {"cpu": "/CPU:0", "gpu": "/GPU:0"}


class TensorflowBackend(Backend):
    name = "tensorflow"
    contract = 2
    module = "tensorflow"
    # tf.nn.conv2d documents half, bfloat16, float32 and float64 and has CPU
    # and GPU kernels for each; every verb runs in all four on the CPU.
    dtypes = {device: ("float16", "bfloat16", "float32", "float64") for device in ("cpu", "gpu")}
    verbs = VERBS
    # TensorFlow's CPU thread pools flush float32 and bfloat16 subnormals to zero (measured, TF 2.21;
    # findings/tensorflow/conv2d_subnormals_flushed).
    flushes_subnormals = {"cpu": ("float32", "bfloat16")}
    # tf.nn.depthwise_conv2d with strides > 1 and dilations > 1 (spec/xfails/tensorflow.txt).
    known_wrong = ((frozenset({"depthwise", "dilation_strided"}), "https://github.com/tensorflow/tensorflow/issues/100237"),
                   # bfloat16 with strides (1, 2), under oneDNN: findings/tensorflow/conv2d_grouped_bfloat16_garbage
                   (frozenset({"depthwise", "stride"}), "findings/tensorflow/conv2d_grouped_bfloat16_garbage"))
    conventions = {
        "valid": "native: tf.nn.conv2d(padding='VALID')",
        "explicit": "native: padding=[[0, 0], [top, bottom], [left, right], [0, 0]]",
        "same": "native: padding='SAME'",
        "same_lower": "emulated: explicit pads with the extra pixel at the beginning (TF has no SAME_LOWER)",
        "same_strided": "native: padding='SAME' with strides", "stride": "native: strides=",
        "dilation": "native: dilations= (the gradient on the CPU in float64, and in every dtype when TF runs "
                    "without oneDNN: the kernel dilated with zeros, since that Conv2DBackpropInput has no dilated "
                    "CPU kernel, tensorflow#28264, findings/tensorflow/conv2d_backprop_input_cpu_no_dilation_groups; "
                    "asked of TF once per dtype)",
        "dilation_strided": "native: tf.nn.conv2d with strides and dilations (tf.nn.convolution and Keras refuse)",
        "channels": "native: NHWC input and HWIO filter, transposed from NCHW / OIHW",
        "groups": "native: a filter whose in-depth is C_in / groups (TF has no groups argument; the gradient "
                  "on the CPU in float64, and in every dtype when TF runs without oneDNN: the groups one by one, "
                  "concatenated, since that Conv2DBackpropInput has no grouped CPU kernel, findings/tensorflow/"
                  "conv2d_backprop_input_cpu_no_dilation_groups; asked of TF once per dtype)",
        "depthwise": "native: tf.nn.depthwise_conv2d, filter (kh, kw, C_in, multiplier); with unequal strides the "
                     "grouped tf.nn.conv2d (DepthwiseConv2dNative takes equal strides only)",
        "reflect": "native: tf.pad(mode='REFLECT')", "symmetric": "native: tf.pad(mode='SYMMETRIC')",
        "replicate": "emulated: tf.concat of repeated edge rows and columns (TF has no edge mode)",
        "circular": "emulated: tf.concat of wrapped slices (TF has no wrap mode)",
        "gradient": "native: tf.GradientTape",
        "layout_nhwc": "native: data_format='NHWC' with HWIO filters (TF's default, and the only layout its CPU "
                       "conv takes: the NCHW cases are transposed in and out)",
        "subnormals": "flushed: float32 and bfloat16 on the CPU (TensorFlow's thread pools set FTZ/DAZ; measured, "
                      "TF 2.21); kept in float64",
        "pool_max": "native: tf.nn.max_pool2d", "pool_avg": "native: tf.nn.avg_pool2d",
        "pool_same": "native: padding='SAME' (an average over the input cells)",
        "pool_exclude_pad": "native for 'same'; else emulated: window sums (a depthwise convolution with a ones "
                            "filter over tf.pad) divided by the input cells",
        "pool_include_pad": "emulated: window sums divided by the padded window's cells (tf.nn.avg_pool2d never "
                            "counts padding)",
        "pool_padding": "emulated: tf.pad (-inf for the maximum; tf.nn.max_pool2d's explicit paddings need them "
                        "symmetric), then 'VALID'",
        "pool_asymmetric": "emulated: tf.pad, then 'VALID'",
        "pool_ceil": "emulated: tf.pad past the padded extent (TF pooling has no ceil mode), never picked nor "
                     "counted",
        "transpose": "native: tf.nn.conv2d_transpose, filters (kh, kw, C_out, C_in), output_shape",
        "transpose_stride": "native: strides=",
        "transpose_dilation": "native: dilations= (on the CPU in float64, and in every dtype without oneDNN: the "
                              "kernel dilated with zeros, since conv2d_transpose is Conv2DBackpropInput, which has "
                              "no dilated CPU kernel there)",
        "transpose_crop": "emulated: 'VALID' with output_shape n_full + output_padding, then the crop sliced off",
        "transpose_same": "native: padding='SAME', output_shape n*s",
    }

    def gpu_unavailable_reason(self) -> str | None:
        tf = self.lib
        if tf.config.list_physical_devices("GPU"):
            return None
        build = "built with CUDA" if tf.test.is_built_with_cuda() else "a build without CUDA"
        return f"no GPU: tf.config.list_physical_devices('GPU') is empty (tensorflow {tf.__version__}, {build})"

    def device_description(self, device: str) -> str:
        if device != "gpu":
            return "cpu"
        gpu = self.lib.config.list_physical_devices("GPU")[0]
        return self.lib.config.experimental.get_device_details(gpu).get("device_name", gpu.name)

    @contextlib.contextmanager
    def numerics(self, device: str, dtype: str, precision: str = "strict") -> Iterator[None]:
        if precision != "strict":
            yield  # fast: TensorFlow's defaults, TF32 included
            return
        # TF runs float32 matmuls and convolutions as TF32 on Ampere and later
        # GPUs unless told not to.  Op determinism has a public switch on only;
        # the off switch lives next to it in tensorflow.python.framework.config.
        from tensorflow.python.framework import config as tf_config

        experimental = self.lib.config.experimental
        saved_tf32 = experimental.tensor_float_32_execution_enabled()
        saved_determinism = tf_config.is_op_determinism_enabled()
        try:
            experimental.enable_tensor_float_32_execution(False)
            confirm("tf.config.experimental.tensor_float_32_execution_enabled()", False,
                    experimental.tensor_float_32_execution_enabled())
            experimental.enable_op_determinism()
            confirm("is_op_determinism_enabled()", True, tf_config.is_op_determinism_enabled())
            yield
        finally:
            experimental.enable_tensor_float_32_execution(saved_tf32)
            if not saved_determinism:
                tf_config.disable_op_determinism()

    def precision_settings(self) -> dict[str, Any]:
        from tensorflow.python.framework import config as tf_config

        return {"tf.config.experimental.tensor_float_32_execution_enabled()":
                self.lib.config.experimental.tensor_float_32_execution_enabled(),
                "is_op_determinism_enabled()": tf_config.is_op_determinism_enabled()}

    def determinism(self, device: str, precision: str) -> str | None:
        if precision == "strict":
            return None
        return "fast mode keeps TensorFlow's defaults (op determinism off), which do not promise repeatability"

    def asarray(self, a: np.ndarray, *, dtype: str, device: str) -> Any:
        tf = self.lib
        with tf.device(_DEVICE_NAMES[device]):
            # Converting NumPy is not an op, so tf.device need not place it; identity is.
            return tf.cast(tf.identity(a), tf.as_dtype(dtype))

    def to_numpy(self, x: Any) -> np.ndarray:
        tf = self.lib
        if x.dtype == tf.bfloat16:
            x = tf.cast(x, tf.float32)
        # .numpy() may share the tensor's CPU buffer.
        return np.array(x.numpy())

    def device_of(self, x: Any) -> str:
        return "gpu" if "GPU" in x.device.upper() else "cpu"

    def dtype_of(self, x: Any) -> str:
        return x.dtype.name

    def corr2d(self, X: Any, K: Any) -> Any:
        tf = self.lib
        h, w = K.shape
        with tf.device(X.device):
            Y = tf.Variable(tf.zeros(output_shape(X.shape, K.shape), dtype=X.dtype))
            for i in range(Y.shape[0]):
                for j in range(Y.shape[1]):
                    Y[i, j].assign(tf.reduce_sum(X[i:i + h, j:j + w] * K))
            return Y.read_value()  # a value, like every verb's result, not the mutable Variable

    def conv2d(self, X: Any, K: Any) -> Any:
        tf = self.lib
        oh, ow = output_shape(X.shape, K.shape)
        with tf.device(X.device):
            Y = tf.nn.conv2d(tf.reshape(X, (1, *X.shape, 1)), tf.reshape(K, (*K.shape, 1, 1)),
                             strides=1, padding="VALID")
            return tf.reshape(Y, (oh, ow))

    def corr2d_matmul(self, X: Any, K: Any) -> Any:
        tf = self.lib
        (kh, kw), (oh, ow) = K.shape, output_shape(X.shape, K.shape)
        with tf.device(X.device):
            patches = tf.image.extract_patches(tf.reshape(X, (1, *X.shape, 1)), sizes=(1, kh, kw, 1),
                                               strides=(1, 1, 1, 1), rates=(1, 1, 1, 1), padding="VALID")
            im2col = tf.reshape(patches, (oh * ow, kh * kw))
            return tf.reshape(im2col @ tf.reshape(K, (kh * kw, 1)), (oh, ow))

    def _book_conv2d(self, kernel_size: tuple[int, int], dtype: str, corr: Any = None) -> Any:
        """The book's ``Conv2D``; its forward is ``corr`` (default: the book's ``corr2d``)."""
        tf = self.lib
        corr2d = corr or self.corr2d

        class Conv2D(tf.keras.layers.Layer):
            # The book's build(kernel_size) gets Keras' input shape instead,
            # so the kernel size comes in through the constructor.
            def __init__(self, kernel_size, **kwargs):
                super().__init__(**kwargs)
                self.kernel_size = tuple(kernel_size)

            def build(self, input_shape):
                self.weight = self.add_weight(name="weight", shape=self.kernel_size, initializer="random_normal")
                self.bias = self.add_weight(name="bias", shape=(1,), initializer="random_normal")

            def call(self, inputs):
                return corr2d(inputs, self.weight) + self.bias

        return Conv2D(kernel_size, dtype=dtype)

    def conv2d_layer(self, X: Any, K: Any, b: Any) -> Any:
        with self.lib.device(X.device):
            layer = self._book_conv2d(K.shape, X.dtype.name)
            layer.build(X.shape)
            layer.weight.assign(K)
            layer.bias.assign(b)
            return layer(X)

    def layer_parameters(self, kernel_size, *, dtype, device):
        tf = self.lib
        with tf.device(_DEVICE_NAMES[device]):
            layer = self._book_conv2d(kernel_size, dtype)
            layer.build(kernel_size)  # registers the weights without a forward pass (no corr2d involved)
        # Keras 3 names a weight "weight"; Keras 2 named it "conv2d/weight:0".
        return {w.name.split("/")[-1].split(":")[0]: tuple(w.shape) for w in layer.trainable_weights}

    def layer_step(self, X: Any, K: Any, b: Any, Y: Any, *, lr: float) -> dict[str, Any]:
        tf = self.lib
        with tf.device(X.device):
            # The forward through the built-in op: the book's corr2d writes into a tf.Variable,
            # which the tape cannot follow back to the weight.
            layer = self._book_conv2d(K.shape, X.dtype.name, corr=self.conv2d)
            layer.build(X.shape)
            layer.weight.assign(K)
            layer.bias.assign(b)
            optimizer = tf.keras.optimizers.SGD(learning_rate=lr)
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum((layer(X) - Y) ** 2)
            optimizer.apply_gradients(zip(tape.gradient(loss, layer.trainable_weights), layer.trainable_weights,
                                          strict=True))
            return {w.name.split("/")[-1].split(":")[0]: tf.identity(w) for w in layer.trainable_weights}

    def conv_general(self, X, K, *, stride, dilation, padding, padding_mode, groups, layout="nchw",
                     _zero_dilated=False, _split_groups=False):
        tf = self.lib
        # TF returns an empty array for a kernel larger than the input: the geometry refuses first.
        pads, _ = general_geometry(X.shape, K.shape, stride=stride, dilation=dilation, padding=padding,
                                   padding_mode=padding_mode, groups=groups, layout=layout)
        (t, b), (le, r) = pads
        nhwc = layout == "nhwc"
        with tf.device(X.device):
            x, hwio = _own_layout(tf, layout, X, K)
            kh, kw, _, cout = hwio.shape
            cin = x.shape[3]
            if padding_mode != "zeros":
                x = self._pad(x, pads, padding_mode)
                native = "VALID"
            elif padding in ("valid", "same"):
                native = padding.upper()
            else:
                native = [[0, 0], [t, b], [le, r], [0, 0]]
            rates = tuple(dilation)
            # DepthwiseConv2dNative takes equal strides only ("Current implementation only supports equal
            # length strides in the row and column dimensions"): other strides use the grouped tf.nn.conv2d.
            depthwise = groups > 1 and groups == cin and stride[0] == stride[1]
            # Depthwise: (kh, kw, 1, C_in * m) -> (kh, kw, C_in, m), output channel c*m + j.
            k = tf.reshape(hwio, (kh, kw, cin, cout // cin)) if depthwise else hwio
            if _zero_dilated and rates != (1, 1):
                k, rates = _dilate_kernel(tf, k, rates), (1, 1)
            if depthwise:
                y = tf.nn.depthwise_conv2d(x, k, strides=(1, *stride, 1), padding=native, dilations=rates)
            elif _split_groups and groups > 1:
                ys = [tf.nn.conv2d(xg, kg, strides=(1, *stride, 1), padding=native, dilations=(1, *rates, 1))
                      for xg, kg in zip(tf.split(x, groups, axis=3), tf.split(k, groups, axis=3), strict=True)]
                y = tf.concat(ys, axis=3)
            else:
                y = tf.nn.conv2d(x, k, strides=(1, *stride, 1), padding=native, dilations=(1, *rates, 1))
            return y if nhwc else tf.transpose(y, (0, 3, 1, 2))

    def _pad(self, x, pads, mode):
        tf = self.lib
        (t, b), (le, r) = pads
        if mode in ("reflect", "symmetric"):
            return tf.pad(x, [[0, 0], [t, b], [le, r], [0, 0]], mode=mode.upper())
        H, W = x.shape[1], x.shape[2]
        if mode == "replicate":
            x = tf.concat([tf.repeat(x[:, :1], t, axis=1), x, tf.repeat(x[:, H - 1:], b, axis=1)], axis=1)
            return tf.concat([tf.repeat(x[:, :, :1], le, axis=2), x, tf.repeat(x[:, :, W - 1:], r, axis=2)], axis=2)
        x = tf.concat([x[:, H - t:], x, x[:, :b]], axis=1)  # circular
        return tf.concat([x[:, :, W - le:], x, x[:, :, :r]], axis=2)

    def pool2d(self, X, *, kind, window, stride, padding, ceil_mode, count_include_pad):
        tf = self.lib
        pads, shape = pool_geometry(X.shape, kind=kind, window=window, stride=stride, padding=padding,
                                    ceil_mode=ceil_mode, count_include_pad=count_include_pad)
        (h, w), (kh, kw), (sh, sw) = X.shape[2:], window, stride
        with tf.device(X.device):
            x = tf.transpose(X, (0, 2, 3, 1))
            args = {"ksize": (kh, kw), "strides": (sh, sw)}
            native = padding == "valid" and not ceil_mode or (
                padding == "same" and not ceil_mode and (kind == "max" or not count_include_pad))
            if native:
                pool = tf.nn.max_pool2d if kind == "max" else tf.nn.avg_pool2d
                return tf.transpose(pool(x, padding=padding.upper(), **args), (0, 3, 1, 2))
            over = pool_overhang(X.shape, pads, window, stride, shape)
            full = [[0, 0], [pads[0][0], pads[0][1] + over[0]], [pads[1][0], pads[1][1] + over[1]], [0, 0]]
            # The spec's sizes crop the result: with ceil sizes, a trailing pad can hold a last window that
            # starts past the input (dropped by the spec's rule), which a 'VALID' pool of the padded input keeps.
            ho, wo = shape[2:]
            if kind == "max":
                y = tf.nn.max_pool2d(tf.pad(x, full, constant_values=float("-inf")), padding="VALID", **args)
                return tf.transpose(y[:, :ho, :wo], (0, 3, 1, 2))
            # Window sums: every channel as an image of its own through tf.nn.conv2d with a kernel of ones
            # (depthwise_conv2d, the obvious op, takes equal strides only; found by the generated property).
            n, channels = x.shape[0], x.shape[3]
            padded = tf.pad(x, full)
            images = tf.reshape(tf.transpose(padded, (0, 3, 1, 2)), (n * channels, *padded.shape[1:3], 1))
            sums = tf.nn.conv2d(images, tf.ones((kh, kw, 1, 1), dtype=x.dtype), strides=(1, sh, sw, 1),
                                padding="VALID")
            sums = tf.transpose(tf.reshape(sums, (n, channels, *sums.shape[1:3])), (0, 2, 3, 1))
            inside = tf.pad(tf.ones((1, h, w, 1), x.dtype), [[0, 0], *pads, [0, 0]],
                            constant_values=1 if count_include_pad else 0)
            inside = tf.pad(inside, [[0, 0], [0, over[0]], [0, over[1]], [0, 0]])
            counts = tf.nn.conv2d(inside, tf.ones((kh, kw, 1, 1), x.dtype), strides=(1, sh, sw, 1), padding="VALID")
            return tf.transpose((sums / counts)[:, :ho, :wo], (0, 3, 1, 2))

    def conv_transpose(self, X, K, *, stride, dilation, padding, output_padding):
        tf = self.lib
        crops, shape = transpose_geometry(X.shape, K.shape, stride=stride, dilation=dilation, padding=padding,
                                          output_padding=output_padding)
        n, _, h, w = X.shape
        (sh, sw) = stride
        with tf.device(X.device):
            x = tf.transpose(X, (0, 2, 3, 1))
            k = tf.transpose(K, (2, 3, 1, 0))  # (kh, kw, C_out, C_in)
            rates = (1, *dilation, 1)
            if tuple(dilation) != (1, 1) and _cpu_backprop_lacks_dilation_or_groups(tf, X):
                # conv2d_transpose is Conv2DBackpropInput: on the CPU, no dilation in float64, nor in any
                # dtype without oneDNN.
                k, rates = _dilate_kernel(tf, k, tuple(dilation)), (1, 1, 1, 1)
            # The dilated kernel's extent, d (k - 1) + 1, on each axis.
            kh, kw, cout = rates[1] * (k.shape[0] - 1) + 1, rates[2] * (k.shape[1] - 1) + 1, k.shape[2]
            if padding == "same":
                y = tf.nn.conv2d_transpose(x, k, output_shape=(n, h * sh, w * sw, cout), strides=(1, sh, sw, 1),
                                           padding="SAME", dilations=rates)
                return tf.transpose(y, (0, 3, 1, 2))
            full = ((h - 1) * sh + kh + output_padding[0], (w - 1) * sw + kw + output_padding[1])
            y = tf.nn.conv2d_transpose(x, k, output_shape=(n, *full, cout), strides=(1, sh, sw, 1), padding="VALID",
                                       dilations=rates)
            (t, b), (le, r) = crops
            return tf.transpose(y[:, t:full[0] - b, le:full[1] - r], (0, 3, 1, 2))

    def conv_general_vjp(self, X, K, dY, **params):
        tf = self.lib
        with tf.device(X.device):
            with tf.GradientTape() as tape:
                tape.watch(X)
                tape.watch(K)
                # In float64 the CPU has neither a dilated Conv2DBackpropInput/Filter ("Current CPU
                # implementations do not yet support dilation rates larger than 1", tensorflow#28264) nor a
                # grouped one ("Gradients for grouped convolutions are not supported on CPU"); float16,
                # bfloat16 and float32 have both only where TF runs with oneDNN.  There: a kernel dilated
                # with zeros (the same products and sums), and the groups one by one, concatenated.
                emulate = _cpu_backprop_lacks_dilation_or_groups(tf, X)
                Y = self.conv_general(X, K, **params, _zero_dilated=emulate, _split_groups=emulate)
            dX, dK = tape.gradient(Y, (X, K), output_gradients=dY)
            return dX, dK

    def conv_general_backprop(self, X, K, dY, *, stride, dilation, padding, padding_mode, groups, layout="nchw"):
        """TensorFlow's explicit gradient functions: ``tf.compat.v1.nn.conv2d_backprop_input``/``_filter``
        (TF 2 exports only the depthwise ones, ``tf.nn.depthwise_conv2d_backprop_*``), on the path the
        forward takes."""
        tf = self.lib
        pads, _ = general_geometry(X.shape, K.shape, stride=stride, dilation=dilation, padding=padding,
                                   padding_mode=padding_mode, groups=groups, layout=layout)
        if padding_mode != "zeros":
            raise ValueError("the explicit gradient functions differentiate the convolution, not a padding mode")
        (t, b), (le, r) = pads
        nhwc = layout == "nhwc"
        with tf.device(X.device):
            # The CPU's Conv2DBackpropInput/Filter with explicit pads support no dilation and no groups in
            # any dtype (autograd's path, with 'VALID', has both in float16/bfloat16/float32, measured):
            # the input padded with zeros, 'VALID', and the gradient's pad cropped off (a zero pad's adjoint).
            x, hwio, dy = _own_layout(tf, layout, X, K, dY)
            (_, h, w, cin), (kh, kw, _, cout) = x.shape, hwio.shape
            x = tf.pad(x, [[0, 0], [t, b], [le, r], [0, 0]])
            back = (lambda a, axes: a) if nhwc else tf.transpose  # to the caller's layout
            strides = (1, *stride, 1)
            if groups > 1 and groups == cin and stride[0] == stride[1]:  # the forward's depthwise path
                k = tf.reshape(hwio, (kh, kw, cin, cout // cin))
                dx = tf.nn.depthwise_conv2d_backprop_input(x.shape, k, dy, strides, "VALID", dilations=dilation)
                dk = tf.nn.depthwise_conv2d_backprop_filter(x, k.shape, dy, strides, "VALID", dilations=dilation)
                dk = tf.reshape(dk, (kh, kw, 1, cout))
                return back(dx[:, t:t + h, le:le + w], (0, 3, 1, 2)), back(dk, (3, 2, 0, 1))
            k = hwio
            rates = tuple(dilation)
            # As in conv_general_vjp: where the CPU has neither a dilated nor a grouped
            # Conv2DBackpropInput/Filter, a kernel dilated with zeros, and the groups one by one.
            emulate = _cpu_backprop_lacks_dilation_or_groups(tf, X)
            if emulate and rates != (1, 1):
                k, rates = _dilate_kernel(tf, k, rates), (1, 1)
            parts = groups if emulate else 1
            v1 = tf.compat.v1.nn
            dxs, dks = [], []
            for xg, kg, dyg in zip(tf.split(x, parts, axis=3), tf.split(k, parts, axis=3), tf.split(dy, parts, axis=3),
                                   strict=True):
                dxs.append(v1.conv2d_backprop_input(xg.shape, kg, dyg, strides, "VALID", dilations=(1, *rates, 1)))
                dks.append(v1.conv2d_backprop_filter(xg, kg.shape, dyg, strides, "VALID", dilations=(1, *rates, 1)))
            dk = tf.concat(dks, axis=3)
            if tuple(dilation) != rates:  # the zero-dilated kernel's gradient: keep the real taps
                dk = dk[::dilation[0], ::dilation[1]]
            dx = tf.concat(dxs, axis=3)[:, t:t + h, le:le + w]
            return back(dx, (0, 3, 1, 2)), back(dk, (3, 2, 0, 1))

    def receptive_field(self, X: Any, K1: Any, K2: Any) -> tuple[Any, Any]:
        tf = self.lib
        with tf.device(X.device):
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(X)
                Y = self.conv2d(X, K1)
                Z_total = tf.reduce_sum(self.conv2d(Y, K2))
                Y00 = Y[0, 0]
            return tape.gradient(Z_total, X), tape.gradient(Y00, X)

    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        tf = self.lib
        with tf.device(X.device):
            # The layer's default initialiser, seeded on its own: no global generator is seeded or drawn
            # from (keras.utils.set_random_seed would reseed Python's, NumPy's and TensorFlow's).
            init = tf.keras.initializers.GlorotUniform(seed=seed)
            conv = tf.keras.layers.Conv2D(1, kernel_size, use_bias=False, dtype=X.dtype.name,
                                          kernel_initializer=init)
            # Keras convolutions are NHWC: one example, one channel.
            X4, Y4 = tf.reshape(X, (1, *X.shape, 1)), tf.reshape(Y, (1, *Y.shape, 1))
            conv.build(X4.shape)
            if initial is not None:
                conv.kernel.assign(tf.reshape(initial, (*kernel_size, 1, 1)))
            start = tf.reshape(conv.kernel, kernel_size)
            losses = tf.Variable(tf.zeros((steps,), dtype=X.dtype))
            for step in range(steps):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_sum((conv(X4) - Y4) ** 2)
                conv.kernel.assign_sub(lr * tape.gradient(loss, conv.kernel))
                losses[step].assign(loss)
            return Trajectory(initial=start, losses=losses.read_value(), kernel=tf.reshape(conv.kernel, kernel_size))


def _own_layout(tf, layout: str, X, K, dY=None) -> tuple:
    """``X`` (and ``dY``) as NHWC and ``K`` as HWIO: TensorFlow's own layout, the only one its CPU conv
    takes; a channels-last case comes in it already."""
    if layout == "nhwc":
        return (X, K) if dY is None else (X, K, dY)
    images = (tf.transpose(X, (0, 2, 3, 1)), tf.transpose(K, (2, 3, 1, 0)))
    return images if dY is None else (*images, tf.transpose(dY, (0, 2, 3, 1)))


def _cpu_backprop_lacks_dilation_or_groups(tf, X) -> bool:
    """Whether the CPU's Conv2DBackpropInput in X's dtype refuses a dilated or a grouped 'VALID' case.
    It does in float64 always; in every dtype where TF runs without oneDNN, which TF 2.21 turns on by
    itself only on CPUs with AVX-512 VNNI/BF16 or AMX (measured: an AVX2-only CPU refuses both in
    float32; an AVX-512 one took them).  Asked of TF itself once per dtype, not guessed from the CPU."""
    return "GPU" not in X.device and _probe_cpu_backprop(tf, X.dtype.name)


@functools.cache
def _probe_cpu_backprop(tf, dtype: str) -> bool:
    with tf.device("/CPU:0"):
        dy = tf.ones((1, 1, 1, 2), dtype=dtype)
        try:
            # Dilated: a 2x2 kernel at rate 2 over a 3x3 input; grouped: 2 input channels, filter in-depth 1.
            tf.compat.v1.nn.conv2d_backprop_input((1, 3, 3, 2), tf.ones((2, 2, 2, 2), dtype=dtype), dy[:, :, :, :2],
                                                  (1, 1, 1, 1), "VALID", dilations=(1, 2, 2, 1))
            tf.compat.v1.nn.conv2d_backprop_input((1, 2, 2, 2), tf.ones((2, 2, 1, 2), dtype=dtype), dy,
                                                  (1, 1, 1, 1), "VALID")
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
            return True
    return False


def _dilate_kernel(tf, k, rates):
    """An HWIO (or depthwise HWCM) kernel with ``rate - 1`` zeros between its taps on each axis."""
    for axis, rate in enumerate(rates):
        if rate > 1:
            taps = k.shape[axis]
            zeros = tf.zeros_like(k)
            k = tf.stack([k] + [zeros] * (rate - 1), axis=axis + 1)
            shape = list(k.shape)
            k = tf.reshape(k, shape[:axis] + [shape[axis] * rate] + shape[axis + 2:])
            k = tf.gather(k, tf.range(rate * (taps - 1) + 1), axis=axis)
    return k
