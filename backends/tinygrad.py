"""tinygrad: the chapter in tinygrad's own ops, on its CPU device (kernels compiled by clang).

tinygrad is lazy: nothing runs until ``realize()``, so every verb realizes its result and a
failure happens inside the verb.  The book's ``corr2d`` writes each output cell by ``__setitem__``
into a realized buffer; the built-in op is ``Tensor.conv2d``; gradients come from
``Tensor.gradient`` / ``backward``; the layers are the book's ``Conv2D`` (plain class, parameters
found by ``nn.state``), ``nn.Conv2d`` and ``nn.optim.SGD``.  tinygrad picks its default device
once and writes it to ``os.environ["DEV"]`` then: :meth:`load` does that, and asks clang once
whether it compiles bfloat16 (Debian's clang 14 does not: "__bf16 is not supported on this target").
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from backends import base
from backends.base import VERBS, Backend, Trajectory, confirm, output_shape

_NAMES = {"half": "float16", "__bf16": "bfloat16", "float": "float32", "double": "float64"}


class TinygradBackend(Backend):
    name = "tinygrad"
    module = "tinygrad"
    contract = 2
    # bfloat16 is added by load() where the CPU device's compiler takes it (probed once).
    dtypes = {"cpu": ("float16", "float32", "float64")}
    verbs = tuple(v for v in VERBS if v != "conv_general_backprop")
    conventions = {
        "valid": "native: Tensor.conv2d(padding=0)", "explicit": "native: Tensor.conv2d(padding=(l, r, t, b))",
        "same": "emulated: TensorFlow's pads as Tensor.conv2d(padding=(l, r, t, b)) (Tensor.conv2d has no 'same'; "
                "nn.Conv2d's is a layer, stride 1 only, and swaps per-axis dilations in 0.14: tinygrad#17805, "
                "findings/tinygrad/nn_conv2d_same_dilation_swapped)",
        "same_lower": "emulated: the extra pixel at the beginning, as padding=(left, right, top, bottom)",
        "same_strided": "emulated: TensorFlow's pads as padding=(left, right, top, bottom) with stride=",
        "stride": "native: stride=", "dilation": "native: dilation=", "dilation_strided": "native", "groups": "native",
        "channels": "native: NCHW input, OIHW weight", "depthwise": "native: groups=C_in, weight (C_in*m, 1, kh, kw)",
        "reflect": "native: Tensor.pad(mode='reflect')", "replicate": "native: Tensor.pad(mode='replicate')",
        "symmetric": "emulated: Tensor.cat of flipped edge slices (Tensor.pad has no symmetric mode)",
        "circular": "native: Tensor.pad(mode='circular')", "gradient": "native: Tensor.gradient",
        "layout_nhwc": "emulated: Tensor.permute to NCHW/OIHW and back (Tensor.conv2d is channels-first only)",
        "subnormals": "kept: IEEE 754 subnormals in every declared dtype on the CPU (measured)",
        "pool_max": "native: Tensor.max_pool2d", "pool_avg": "native: Tensor.avg_pool2d",
        "pool_padding": "native: padding=(l, r, t, b)", "pool_asymmetric": "native: padding=(l, r, t, b)",
        "pool_same": "emulated: TensorFlow's pads as padding=(left, right, top, bottom) (no 'same' pooling)",
        "pool_include_pad": "native: count_include_pad=True", "pool_exclude_pad": "native: count_include_pad=False",
        "pool_ceil": "native: ceil_mode=True", "transpose": "native: Tensor.conv_transpose2d, weight IOHW",
        "transpose_stride": "native: stride=", "transpose_dilation": "native: dilation=",
        "transpose_crop": "native: padding=(left, right, top, bottom), output_padding=",
        "transpose_same": "emulated: TensorFlow's crop as padding=(left, right, top, bottom) (no 'same')",
    }
    #: Strict mode: tinygrad's ContextVars that would trade precision or bitwise repeatability (Winograd
    #: convolutions, TF32 tensor cores, half-precision images, BEAM-searched kernels), each held off.
    STRICT = (("WINO", 0), ("ALLOW_TF32", 0), ("FLOAT16", 0), ("IMAGE", 0), ("BEAM", 0))
    DEVICE = "CPU"
    _conv2d_class: Any = None

    def load(self) -> Any:
        lib = super().load()
        # The default device is chosen (and written to os.environ["DEV"]) on first use: do it here.
        _ = lib.Device.DEFAULT
        if self._compiles(lib, "bfloat16"):
            self.dtypes = {"cpu": ("float16", "bfloat16", "float32", "float64")}
        return lib

    def _compiles(self, lib, dtype: str) -> bool:
        """Whether the CPU device builds and runs a kernel in ``dtype`` (clang's error kept off the terminal)."""
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        try:
            x = lib.Tensor([1.0, 2.0], device=self.DEVICE, dtype=getattr(lib.dtypes, dtype))
            return (x * 3).cast(lib.dtypes.float32).tolist() == [3.0, 6.0]
        except Exception:
            return False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(null)

    def version(self) -> str:
        return importlib.metadata.version("tinygrad")  # tinygrad has no __version__

    def _vars(self) -> dict[str, Any]:
        from tinygrad.helpers import ContextVar

        return {name: ContextVar._cache[name] for name, _ in self.STRICT}

    @contextlib.contextmanager
    def numerics(self, device: str, dtype: str, precision: str = "strict") -> Iterator[None]:
        if precision != "strict":
            yield  # fast: tinygrad's defaults (whatever its environment variables say)
            return
        variables = self._vars()
        saved = {name: var.value for name, var in variables.items()}
        try:
            for name, value in self.STRICT:
                variables[name].value = value
                confirm(f"tinygrad.helpers.{name}", value, variables[name].value)
            yield
        finally:
            for name, value in saved.items():
                variables[name].value = value

    def precision_settings(self) -> dict[str, Any]:
        return {f"tinygrad.helpers.{name}": var.value for name, var in self._vars().items()}

    def global_state(self) -> dict[str, Any]:
        from tinygrad.helpers import ContextVar

        Tensor = self.lib.Tensor
        counters = {d: c.tolist() for d, c in Tensor._device_rng_counters.items()}
        return {"rng Tensor._seed, _device_rng_counters": (Tensor._seed, sorted(counters.items())),
                **{f"tinygrad.helpers.{k}": ContextVar._cache[k].value for k in ("TRAINING", "DEFAULT_FLOAT")}}

    def determinism(self, device: str, precision: str) -> str | None:
        if precision == "strict" or not self._vars()["BEAM"].value:
            return None
        return "fast mode keeps BEAM>0 from the environment: kernels chosen by timing need not repeat bitwise"

    def asarray(self, a: np.ndarray, *, dtype: str, device: str) -> Any:
        if device != "cpu":
            raise ValueError(f"the tinygrad adapter runs on the CPU only, not {device!r}")
        # bfloat16 arrives as float32 (NumPy has none) and is cast on the device, exactly.
        dt = getattr(self.lib.dtypes, dtype)
        return self.lib.Tensor(np.ascontiguousarray(a), device=self.DEVICE, dtype=dt).realize()

    def to_numpy(self, x: Any) -> np.ndarray:
        if not isinstance(x, self.lib.Tensor):
            raise TypeError(f"not a tinygrad Tensor: {type(x).__name__}")
        x = x.cast(self.lib.dtypes.float32) if x.dtype == self.lib.dtypes.bfloat16 else x
        return np.array(x.numpy(), copy=True)

    def device_of(self, x: Any) -> str:
        return "cpu" if str(x.device).split(":")[0] in ("CPU", "PYTHON", "NPY") else "gpu"

    def dtype_of(self, x: Any) -> str:
        return _NAMES.get(x.dtype.name, x.dtype.name)

    # -- the chapter's verbs -----------------------------------------------------

    def corr2d(self, X: Any, K: Any) -> Any:
        h, w = K.shape
        Y = self.lib.Tensor.zeros(*output_shape(X.shape, K.shape), dtype=X.dtype, device=X.device).contiguous()
        Y.realize()
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
        return Y.realize()

    def conv2d(self, X: Any, K: Any) -> Any:
        return self._conv2d(X, K).realize()

    def _conv2d(self, X: Any, K: Any) -> Any:  # lazy, for autograd to follow; the kernel must fit
        return X.reshape(1, 1, *X.shape).conv2d(K.reshape(1, 1, *K.shape)).reshape(output_shape(X.shape, K.shape))

    def corr2d_matmul(self, X: Any, K: Any) -> Any:
        (kh, kw), (oh, ow) = K.shape, output_shape(X.shape, K.shape)
        # unfold(dim, size, 1): the windows in place of dim, their cells as a new last axis: (oh, ow, kh, kw).
        windows = X.unfold(0, kh, 1).unfold(1, kw, 1)
        return (windows.reshape(oh * ow, kh * kw) @ K.reshape(kh * kw)).reshape(oh, ow).realize()

    def _layer(self, kernel_size, *, dtype, corr: Any = None) -> Any:
        """The book's ``Conv2D``: a plain class, whose Tensors ``nn.state`` finds; forward ``corr``."""
        if self._conv2d_class is None:
            Tensor = self.lib.Tensor

            class Conv2D:
                def __init__(self, kernel_size, *, dtype, device, corr):
                    self.weight = Tensor.rand(*kernel_size, dtype=dtype, device=device).contiguous().realize()
                    self.bias = Tensor.zeros(1, dtype=dtype, device=device).contiguous().realize()
                    self.corr = corr

                def __call__(self, x):
                    return self.corr(x, self.weight) + self.bias

            self._conv2d_class = Conv2D
        return self._conv2d_class(tuple(kernel_size), dtype=dtype, device=self.DEVICE, corr=corr or self.corr2d)

    def _loaded_layer(self, K, b, corr=None):
        layer = self._layer(K.shape, dtype=K.dtype, corr=corr)
        layer.weight.assign(K.detach()).realize()
        layer.bias.assign(b.detach()).realize()
        return layer

    def conv2d_layer(self, X: Any, K: Any, b: Any) -> Any:
        return self._loaded_layer(K, b)(X).realize()

    def layer_parameters(self, kernel_size, *, dtype, device):
        from tinygrad.nn.state import get_state_dict

        layer = self._layer(kernel_size, dtype=getattr(self.lib.dtypes, dtype))
        return {name: tuple(t.shape) for name, t in get_state_dict(layer).items()}

    def layer_step(self, X: Any, K: Any, b: Any, Y: Any, *, lr: float) -> dict[str, Any]:
        from tinygrad.helpers import Context
        from tinygrad.nn.optim import SGD
        from tinygrad.nn.state import get_parameters, get_state_dict

        # The forward through the built-in op, as on every framework.
        layer = self._loaded_layer(K, b, corr=self._conv2d)
        optimizer = SGD(get_parameters(layer), lr=lr)  # no momentum, no weight decay
        optimizer.zero_grad()
        # Detached inputs: backward() fills .grad of every float Tensor in the graph, the caller's too.
        ((layer(X.detach()) - Y.detach()) ** 2).sum().backward()
        with Context(TRAINING=1):
            optimizer.step()
        return {name: t.detach().clone().realize() for name, t in get_state_dict(layer).items()}

    def receptive_field(self, X: Any, K1: Any, K2: Any) -> tuple[Any, Any]:
        Y = self._conv2d(X, K1)
        (dZ,) = self._conv2d(Y, K2).sum().gradient(X)
        (dY00,) = Y[0, 0].gradient(X)
        self.lib.Tensor.realize(dZ, dY00)
        return dZ, dY00

    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        lib, Tensor = self.lib, self.lib.Tensor
        # tinygrad's global RNG is three class attributes; manual_seed replaces them, so the old ones come back.
        saved = (Tensor._seed, Tensor._device_seeds, Tensor._device_rng_counters)
        try:
            Tensor.manual_seed(seed)
            conv = lib.nn.Conv2d(1, 1, kernel_size, bias=False)
            conv.weight = conv.weight.to(X.device).cast(X.dtype).contiguous().realize()
        finally:
            Tensor._seed, Tensor._device_seeds, Tensor._device_rng_counters = saved
        if initial is not None:
            conv.weight.assign(initial.reshape(conv.weight.shape).detach()).realize()
        start = conv.weight.reshape(kernel_size).clone().realize()
        X4, Y4 = X.detach().reshape(1, 1, *X.shape), Y.detach().reshape(1, 1, *Y.shape)
        losses = []
        for _ in range(steps):
            conv.weight.grad = None  # zero_grad
            loss = ((conv(X4) - Y4) ** 2).sum()
            loss.backward()
            Tensor.realize(loss, conv.weight.grad)
            conv.weight.assign(conv.weight.detach() - lr * conv.weight.grad).realize()
            losses.append(loss)
        return Trajectory(initial=start, losses=Tensor.stack(*losses).realize(),
                          kernel=conv.weight.reshape(kernel_size).clone().realize())

    # -- beyond the chapter: the general convolution ---------------------------------

    def _conv_general(self, X, K, *, stride, dilation, padding, padding_mode, groups, layout="nchw"):
        """The lazy general convolution (NCHW/OIHW inside; NHWC/HWIO permuted in and out)."""
        pads, _ = base.general_geometry(X.shape, K.shape, stride=stride, dilation=dilation, padding=padding,
                                   padding_mode=padding_mode, groups=groups, layout=layout)
        if layout == "nhwc":
            X, K = X.permute(0, 3, 1, 2), K.permute(3, 2, 0, 1)
        (t, b), (le, r) = pads
        flat = (le, r, t, b)
        if padding_mode == "symmetric":
            X, flat = _symmetric_pad(X, pads), 0
        elif padding_mode != "zeros":
            X, flat = X.pad((None, None, (t, b), (le, r)), mode=padding_mode), 0
        Y = X.conv2d(K, groups=groups, stride=tuple(stride), dilation=tuple(dilation), padding=flat)
        return Y.permute(0, 2, 3, 1) if layout == "nhwc" else Y

    def conv_general(self, X, K, **params):
        return self._conv_general(X, K, **params).realize()

    def conv_general_vjp(self, X, K, dY, **params):
        dX, dK = self._conv_general(X, K, **params).gradient(X, K, gradient=dY)
        self.lib.Tensor.realize(dX, dK)
        return dX, dK

    def conv_general_backprop(self, X, K, dY, **params):
        raise NotImplementedError("tinygrad has no explicit convolution-gradient functions (autograd only)")

    def pool2d(self, X, *, kind, window, stride, padding, ceil_mode, count_include_pad):
        pads, _ = base.pool_geometry(X.shape, kind=kind, window=window, stride=stride, padding=padding,
                                ceil_mode=ceil_mode, count_include_pad=count_include_pad)
        (t, b), (le, r) = pads
        args = {"kernel_size": tuple(window), "stride": tuple(stride), "padding": (le, r, t, b), "ceil_mode": ceil_mode}
        if kind == "max":
            return X.max_pool2d(**args).realize()
        return X.avg_pool2d(count_include_pad=count_include_pad, **args).realize()

    def conv_transpose(self, X, K, *, stride, dilation, padding, output_padding):
        crops, _ = base.transpose_geometry(X.shape, K.shape, stride=stride, dilation=dilation, padding=padding,
                                      output_padding=output_padding)
        (t, b), (le, r) = crops
        return X.conv_transpose2d(K, stride=tuple(stride), dilation=tuple(dilation), padding=(le, r, t, b),
                                  output_padding=tuple(output_padding)).realize()


def _symmetric_pad(X, pads):
    """Symmetric padding (the edge repeated in the mirror) of NCHW ``X``, from tinygrad's slices."""
    for axis, (lo, hi) in ((2, pads[0]), (3, pads[1])):
        n, edge = X.shape[axis], (slice(None),) * axis
        parts = ([X[(*edge, slice(0, lo))].flip(axis)] if lo else []) + [X] + \
            ([X[(*edge, slice(n - hi, n))].flip(axis)] if hi else [])
        X = parts[0].cat(*parts[1:], dim=axis)
    return X
