"""JAX, with Flax linen for the layers: the chapter's JAX tab.

Arrays are immutable, so the book's ``corr2d`` writes with ``Y.at[i, j].set``;
the built-in op is ``jax.lax.conv_general_dilated``; the layers are linen
modules (the book's ``Conv2D`` defines ``forward``, which linen never calls,
so this one defines ``__call__``).  :meth:`numerics` switches
``jax_enable_x64`` on for float64 (so the adapter works with x64 off
globally) and, in the strict precision mode, the default matmul and
convolution precision to ``highest``, reads both back, and restores them
after.  XLA's deterministic GPU ops are switched on process-wide at load.
"""

from __future__ import annotations

import contextlib
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


class JaxBackend(Backend):
    name = "jax"
    contract = 2
    module = "jax"
    # XLA convolves all four natively on CPU (every verb checked) and GPU;
    # float64 under x64.
    dtypes = {device: ("float16", "bfloat16", "float32", "float64") for device in ("cpu", "gpu")}
    verbs = tuple(v for v in VERBS if v != "conv_general_backprop")
    # XLA's CPU runtime flushes float32 and bfloat16 subnormals to zero (jax-ml/jax#16200, measured;
    # findings/jax/conv_subnormals_flushed).
    flushes_subnormals = {"cpu": ("float32", "bfloat16")}
    conventions = {
        "valid": "native: lax.conv_general_dilated(padding='VALID')",
        "explicit": "native: padding=((top, bottom), (left, right))",
        "same": "native: padding='SAME'", "same_lower": "native: padding='SAME_LOWER'",
        "same_strided": "native: padding='SAME' with window_strides",
        "stride": "native: window_strides=", "dilation": "native: rhs_dilation=", "dilation_strided": "native",
        "channels": "native: dimension_numbers ('NCHW', 'OIHW', 'NCHW')",
        "groups": "native: feature_group_count=", "depthwise": "native: feature_group_count=C_in",
        "reflect": "emulated: jnp.pad(mode='reflect'), then 'VALID' (jnp.pad reflects periodically for a pad "
                   ">= n: the geometry refuses first)",
        "replicate": "emulated: jnp.pad(mode='edge'), then 'VALID'",
        "symmetric": "emulated: jnp.pad(mode='symmetric'), then 'VALID'",
        "circular": "emulated: jnp.pad(mode='wrap'), then 'VALID'", "gradient": "native: jax.vjp",
        "layout_nhwc": "native: dimension_numbers=('NHWC', 'HWIO', 'NHWC')",
        "subnormals": "flushed: float32 and bfloat16 on the CPU (XLA's CPU client sets FTZ/DAZ, 'working as "
                      "intended': jax#16200); kept in float64",
        "pool_max": "native: lax.reduce_window(lax.max, -inf)",
        "pool_avg": "native: lax.reduce_window(lax.add) sums, divided by the cells counted (a reduce_window of a "
                    "mask)",
        "pool_padding": "native: padding pairs", "pool_asymmetric": "native: padding pairs",
        "pool_same": "native: padding='SAME' pads (lax.padtype_to_pads)",
        "pool_include_pad": "emulated: the mask counts the padded cells",
        "pool_exclude_pad": "emulated: the mask counts the input cells",
        "pool_ceil": "emulated: extra high padding past the padded extent, never picked nor counted",
        "transpose": "native: lax.conv_general_dilated with lhs_dilation=stride and the kernel flipped, IOHW read "
                     "as OIHW (what lax.conv_transpose does with transpose_kernel=True)",
        "transpose_stride": "native: lhs_dilation=", "transpose_dilation": "native: rhs_dilation=",
        "transpose_crop": "native: padding d(k-1) - p, with output_padding at the end",
        "transpose_same": "native: the same padding pairs, from TensorFlow's crop",
    }
    #: jnp.pad's modes for the spec's non-zero padding modes.
    PAD_MODES = {"reflect": "reflect", "replicate": "edge", "symmetric": "symmetric", "circular": "wrap"}

    def version(self) -> str:
        import flax

        return f"{self.lib.__version__} (flax {flax.__version__})"

    def gpu_unavailable_reason(self) -> str | None:
        try:
            self.lib.devices("gpu")
        except RuntimeError as exc:
            return f"no GPU: jax.devices('gpu') raised RuntimeError: {exc}"
        return None

    def device_description(self, device: str) -> str:
        return self.lib.devices("gpu")[0].device_kind if device == "gpu" else "cpu"

    #: XLA's switch for deterministic GPU ops: process-wide, read when the
    #: backend starts, so it is set in :meth:`load` and holds in both modes.
    DETERMINISTIC_FLAG = "--xla_gpu_deterministic_ops=true"

    def load(self) -> Any:
        import os

        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_gpu_deterministic_ops" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {self.DETERMINISTIC_FLAG}".strip()
        lib = super().load()
        self._compilation_cache(lib, os.environ.get("CONV_CONFORMANCE_JAX_CACHE", "").strip())
        return lib

    @staticmethod
    def _compilation_cache(jax: Any, where: str) -> None:
        """JAX's persistent compilation cache, shared by the xdist workers and kept between runs: eager
        JAX compiles every op for every new shape, dtype and precision setting, and compiling is most of
        a JAX run's time (the cross-correlation and conventions cases in float32: 11.6 s cold, 3.1 s
        warm, measured here).  Keyed by JAX itself on the program, the compile options and the JAX and
        XLA versions; a cached executable computes what a fresh one does, and every result is still
        held to the oracle.  ``CONV_CONFORMANCE_JAX_CACHE``: a folder, or ``off``; default
        ``$XDG_CACHE_HOME/conv-conformance/jax`` (``~/.cache/...``).  A cache the user configured is kept."""
        import os
        from pathlib import Path

        if where.lower() == "off" or jax.config.jax_compilation_cache_dir:
            return
        folder = Path(where) if where else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") \
            / "conv-conformance" / "jax"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            return  # no cache: slower, not wrong
        jax.config.update("jax_compilation_cache_dir", str(folder))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # the small ops are the many
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

    @contextlib.contextmanager
    def numerics(self, device: str, dtype: str, precision: str = "strict") -> Iterator[None]:
        config = self.lib.config
        saved = {flag: getattr(config, flag) for flag in ("jax_enable_x64", "jax_default_matmul_precision")}
        try:
            if dtype == "float64":  # a dtype switch, needed in both modes
                config.update("jax_enable_x64", True)
                confirm("jax.config.jax_enable_x64", True, config.jax_enable_x64)
            if precision == "strict":
                # On GPUs the default precision lets float32 convolutions and
                # matmuls run as TF32 or bfloat16 passes; precision=None in
                # the ops below defers to this flag.
                config.update("jax_default_matmul_precision", "highest")
                confirm("jax.config.jax_default_matmul_precision", "highest", config.jax_default_matmul_precision)
            yield
        finally:
            for flag, value in saved.items():
                config.update(flag, value)

    def precision_settings(self) -> dict[str, Any]:
        import os

        config = self.lib.config
        return {"jax_enable_x64": config.jax_enable_x64,
                "jax_default_matmul_precision": config.jax_default_matmul_precision,
                "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")}

    def asarray(self, a: np.ndarray, *, dtype: str, device: str) -> Any:
        jnp = self.lib.numpy
        # np.array copies (a CPU device_put may alias a NumPy buffer) and
        # narrows to ml_dtypes' bfloat16 exactly.
        x = self.lib.device_put(np.array(a, dtype=jnp.dtype(dtype)), self.lib.devices(device)[0])
        if x.dtype != jnp.dtype(dtype):
            # With x64 off, device_put silently turns float64 into float32.
            raise TypeError(f"jax made {x.dtype} of {dtype}; float64 needs numerics(device, 'float64')")
        return x

    def to_numpy(self, x: Any) -> np.ndarray:
        jnp = self.lib.numpy
        return np.array(x.astype(jnp.float32) if x.dtype == jnp.bfloat16 else x)

    def device_of(self, x: Any) -> str:
        platform = next(iter(x.devices())).platform
        return "gpu" if platform in ("gpu", "cuda", "rocm") else platform

    def dtype_of(self, x: Any) -> str:
        return str(x.dtype)

    def corr2d(self, X: Any, K: Any) -> Any:
        h, w = K.shape
        Y = self.lib.numpy.zeros(output_shape(X.shape, K.shape), dtype=X.dtype, device=X.device)
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y = Y.at[i, j].set((X[i:i + h, j:j + w] * K).sum())
        return Y

    # The chapter's verbs beyond the book's loop run under jax.jit (see _compiled): one compile per shape
    # and dtype instead of one per primitive; the book's corr2d above stays an eager loop.
    def conv2d(self, X: Any, K: Any) -> Any:
        output_shape(X.shape, K.shape)
        return self._compiled("_conv2d", ())(X, K)

    def _conv2d(self, X: Any, K: Any) -> Any:
        oh, ow = output_shape(X.shape, K.shape)
        # lax's default layout is NCHW images and OIHW kernels.
        Y = self.lib.lax.conv_general_dilated(X[None, None], K[None, None], window_strides=(1, 1), padding="VALID")
        return Y.reshape(oh, ow)

    def corr2d_matmul(self, X: Any, K: Any) -> Any:
        output_shape(X.shape, K.shape)
        return self._compiled("_corr2d_matmul", ())(X, K)

    def _corr2d_matmul(self, X: Any, K: Any) -> Any:
        jnp = self.lib.numpy
        (kh, kw), (oh, ow) = K.shape, output_shape(X.shape, K.shape)
        # Column (i, j) of im2col is the input shifted by (i, j), which holds
        # element (i, j) of every window.  (Stacked slices, not a fancy-index
        # gather: eager JAX compiles a gather for ~0.7 s per new shape.)
        im2col = jnp.stack([X[i:i + oh, j:j + ow].reshape(-1) for i in range(kh) for j in range(kw)], axis=1)
        return (im2col @ K.reshape(kh * kw)).reshape(oh, ow)

    def _book_conv2d(self, kernel_size: tuple[int, int], dtype: Any, corr: Any = None) -> Any:
        """The book's ``Conv2D``; its forward is ``corr`` (default: the book's ``corr2d``)."""
        from flax import linen as nn

        corr2d = corr or self.corr2d

        class Conv2D(nn.Module):
            kernel_size: tuple[int, int]
            dtype: Any

            def setup(self):
                # torch.rand's convention, as the NumPy reference: uniform on [0, 1).
                self.weight = self.param("weight", nn.initializers.uniform(1.0), self.kernel_size, self.dtype)
                self.bias = self.param("bias", nn.initializers.zeros, (1,), self.dtype)

            def __call__(self, x):
                return corr2d(x, self.weight) + self.bias

            def parameters(self):
                """Touches the parameters, so that ``init`` registers them without a forward pass."""
                return self.weight, self.bias

        return Conv2D(tuple(kernel_size), dtype)

    def conv2d_layer(self, X: Any, K: Any, b: Any) -> Any:
        layer = self._book_conv2d(K.shape, X.dtype)
        return layer.apply({"params": {"weight": K, "bias": b}}, X)

    def layer_parameters(self, kernel_size, *, dtype, device):
        from flax.traverse_util import flatten_dict

        jax = self.lib
        layer = self._book_conv2d(kernel_size, dtype)
        # init through a method that only touches the parameters: no forward pass, so no corr2d involved.
        with jax.default_device(jax.devices(device)[0]):
            variables = layer.init(jax.random.key(0), method=type(layer).parameters)
        return {"/".join(path): tuple(p.shape) for path, p in flatten_dict(variables["params"]).items()}

    def layer_step(self, X: Any, K: Any, b: Any, Y: Any, *, lr: float) -> dict[str, Any]:
        import optax

        jax = self.lib
        # The forward through the built-in op, which autograd follows on every framework (the book's
        # corr2d writes into a buffer in TensorFlow and MXNet); the parameters are the ones linen's
        # init enumerates, loaded with K and b.
        layer = self._book_conv2d(K.shape, X.dtype, corr=self.conv2d)
        names = layer.init(jax.random.key(0), method=type(layer).parameters)["params"]
        params = {name: {"weight": K, "bias": b}[name] for name in names}
        optimizer = optax.sgd(lr)
        grads = jax.grad(lambda p: ((layer.apply({"params": p}, X) - Y) ** 2).sum())(params)
        updates, _ = optimizer.update(grads, optimizer.init(params), params)
        return dict(optax.apply_updates(params, updates))

    # The verbs beyond the book's eager loop run under jax.jit, compiled once per shape, dtype and
    # parameters: eager JAX compiles every primitive for every new shape, and the generated properties
    # draw a new shape per example.  The parameters are checked first, outside the trace.
    def _compiled(self, name: str, static: tuple[str, ...]):
        cache = self.__dict__.setdefault("_jitted", {})
        if (name, static) not in cache:
            cache[name, static] = self.lib.jit(getattr(self, name), static_argnames=static)
        return cache[name, static]

    def conv_general(self, X, K, **params):
        # lax returns an empty array for a kernel larger than the input and crops for a negative pad.
        general_geometry(X.shape, K.shape, **params)
        return self._compiled("_conv_general", tuple(params))(X, K, **_hashable(params))

    def _conv_general(self, X, K, *, stride, dilation, padding, padding_mode, groups, layout="nchw"):
        jax = self.lib
        pads, _ = general_geometry(X.shape, K.shape, stride=stride, dilation=dilation, padding=padding,
                                   padding_mode=padding_mode, groups=groups, layout=layout)
        dims = ("NHWC", "HWIO", "NHWC") if layout == "nhwc" else ("NCHW", "OIHW", "NCHW")
        if padding_mode != "zeros":
            spatial = ((0, 0), *pads, (0, 0)) if layout == "nhwc" else ((0, 0), (0, 0), *pads)
            X = jax.numpy.pad(X, spatial, mode=self.PAD_MODES[padding_mode])
            native = "VALID"
        else:
            native = padding.upper() if isinstance(padding, str) else pads
        return jax.lax.conv_general_dilated(X, K, window_strides=tuple(stride), padding=native,
                                            rhs_dilation=tuple(dilation), feature_group_count=groups,
                                            dimension_numbers=dims)

    def conv_general_backprop(self, X, K, dY, **params):
        raise NotImplementedError("JAX has no explicit gradient functions for a convolution: "
                                  "its gradients are jax.vjp's (conv_general_vjp)")

    def conv_general_vjp(self, X, K, dY, **params):
        general_geometry(X.shape, K.shape, **params)
        return self._compiled("_conv_general_vjp", tuple(params))(X, K, dY, **_hashable(params))

    def _conv_general_vjp(self, X, K, dY, **params):
        _, pullback = self.lib.vjp(lambda x, k: self._conv_general(x, k, **params), X, K)
        return pullback(dY)

    def pool2d(self, X, **params):
        pool_geometry(X.shape, **params)
        return self._compiled("_pool2d", tuple(params))(X, **_hashable(params))

    def _pool2d(self, X, *, kind, window, stride, padding, ceil_mode, count_include_pad):
        jax = self.lib
        lax, jnp = jax.lax, jax.numpy
        pads, shape = pool_geometry(X.shape, kind=kind, window=window, stride=stride, padding=padding,
                                    ceil_mode=ceil_mode, count_include_pad=count_include_pad)
        if padding == "same":  # lax's own reading of 'SAME', checked against the spec's pads
            pads = tuple(lax.padtype_to_pads(X.shape[2:], window, stride, "SAME"))
        (h, w), (kh, kw), (sh, sw) = X.shape[2:], window, stride
        over = pool_overhang(X.shape, pads, window, stride, shape)
        full = ((0, 0), (0, 0), (pads[0][0], pads[0][1] + over[0]), (pads[1][0], pads[1][1] + over[1]))
        dims, steps = (1, 1, kh, kw), (1, 1, sh, sw)
        # The spec's sizes crop the result: with ceil sizes, a trailing pad can hold a last window that starts
        # past the input (dropped by the spec's rule), which reduce_window over the padded input keeps.
        ho, wo = shape[2:]
        if kind == "max":
            return lax.reduce_window(X, -jnp.inf, lax.max, dims, steps, full)[:, :, :ho, :wo]
        sums = lax.reduce_window(X, 0.0, lax.add, dims, steps, full)
        inside = jnp.pad(jnp.ones((1, 1, h, w), X.dtype), ((0, 0), (0, 0), *pads),
                         constant_values=1 if count_include_pad else 0)
        counts = lax.reduce_window(inside, 0.0, lax.add, dims, steps, ((0, 0), (0, 0), (0, over[0]), (0, over[1])))
        return (sums / counts)[:, :, :ho, :wo]

    def conv_transpose(self, X, K, **params):
        transpose_geometry(X.shape, K.shape, **params)
        return self._compiled("_conv_transpose", tuple(params))(X, K, **_hashable(params))

    def _conv_transpose(self, X, K, *, stride, dilation, padding, output_padding):
        lax = self.lib.lax
        crops, _ = transpose_geometry(X.shape, K.shape, stride=stride, dilation=dilation, padding=padding,
                                      output_padding=output_padding)
        kh, kw = K.shape[2:]
        pads = [(d * (k - 1) - lo, d * (k - 1) - hi + op) for k, d, (lo, hi), op
                in zip((kh, kw), dilation, crops, output_padding, strict=True)]
        return lax.conv_general_dilated(X, K[:, :, ::-1, ::-1], window_strides=(1, 1), padding=pads,
                                        lhs_dilation=tuple(stride), rhs_dilation=tuple(dilation),
                                        dimension_numbers=("NCHW", "IOHW", "NCHW"))

    def receptive_field(self, X: Any, K1: Any, K2: Any) -> tuple[Any, Any]:
        grad, corr = self.lib.grad, self.conv2d
        return grad(lambda x: corr(corr(x, K1), K2).sum())(X), grad(lambda x: corr(x, K1)[0, 0])(X)

    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        from flax import linen as nn

        jax, jnp = self.lib, self.lib.numpy
        # linen's Conv pads 'SAME' unless told, and keeps float32 parameters
        # whatever the input's dtype unless given param_dtype.
        conv = nn.Conv(1, kernel_size, use_bias=False, padding="VALID", dtype=X.dtype, param_dtype=X.dtype)
        # linen convolutions are NHWC: one example, one channel.
        X4, Y4 = X.reshape(1, *X.shape, 1), Y.reshape(1, *Y.shape, 1)
        if initial is None:
            # The initialiser draws on the default device, which may not be X's.
            params = jax.device_put(conv.init(jax.random.key(seed), X4), X.device)
        else:
            params = {"params": {"kernel": initial.reshape(*kernel_size, 1, 1)}}

        def loss(params):
            return ((conv.apply(params, X4) - Y4) ** 2).sum()

        start = params["params"]["kernel"].reshape(kernel_size)
        losses = jnp.zeros(steps, dtype=X.dtype, device=X.device)
        for step in range(steps):
            value, grads = jax.value_and_grad(loss)(params)
            params = jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)
            losses = losses.at[step].set(value)
        return Trajectory(initial=start, losses=losses, kernel=params["params"]["kernel"].reshape(kernel_size))


def _hashable(params: dict) -> dict:
    """Static arguments for ``jax.jit``: lists (from JSON) as tuples, all the way down."""
    def freeze(v):
        return tuple(freeze(x) for x in v) if isinstance(v, list | tuple) else v
    return {k: freeze(v) for k, v in params.items()}
