"""PyTorch: the chapter's PyTorch tab, on the CPU and on CUDA ("gpu").

``corr2d`` is the book's loop, the built-in op is
``torch.nn.functional.conv2d`` on a ``(1, 1, H, W)`` view, gradients come from
``torch.autograd``, and ``learn_kernel`` trains ``nn.Conv2d`` with the book's
update.  In the strict precision mode :meth:`numerics` turns TF32 (through
the ``fp32_precision`` API where torch has it, else ``allow_tf32``) and
reduced-precision reductions off (float32 on a GPU stays float32) and makes
cuDNN and torch deterministic without autotuning, reads each setting back, and
restores all of it after; the fast mode leaves torch's defaults alone.
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
    transpose_geometry,
)


class TorchBackend(Backend):
    name = "torch"
    contract = 2
    module = "torch"
    # Every verb runs natively in all four dtypes on the CPU (checked); CUDA
    # documents the same four.
    dtypes = {device: ("float16", "bfloat16", "float32", "float64") for device in ("cpu", "gpu")}
    verbs = VERBS
    _conv2d_class: Any = None
    # A bfloat16 F.conv2d flushes subnormal inputs and results to zero where oneDNN picks its AVX-512 BF16 or
    # AMX kernels, and keeps them on an AVX2 CPU (findings/torch/conv2d_bfloat16_subnormals_flushed): load()
    # asks this CPU, so the declaration is what the machine does, not what another machine did.
    flushes_subnormals: dict = {}
    conventions = {
        "valid": "native: F.conv2d(padding=0)",
        "explicit": "native: F.conv2d(padding=(ph, pw)) when symmetric; else F.pad(x, (left, right, top, bottom)), "
                    "then padding=0",
        "same": "native: F.conv2d(padding='same') at stride 1",
        "same_lower": "emulated: F.pad with the extra pixel at the beginning, then padding=0",
        "same_strided": "emulated: F.pad with TensorFlow's pads (padding='same' refuses a stride, pytorch#67551)",
        "stride": "native: stride=", "dilation": "native: dilation=", "dilation_strided": "native",
        "channels": "native: NCHW input, OIHW weight", "groups": "native: groups=",
        "depthwise": "native: groups=C_in, weight (C_in*m, 1, kh, kw)",
        "reflect": "native: F.pad(mode='reflect')", "replicate": "native: F.pad(mode='replicate')",
        "symmetric": "emulated: torch.cat of flipped edge slices (torch has no symmetric mode)",
        "circular": "native: F.pad(mode='circular')", "gradient": "native: torch.autograd.grad",
        "layout_nhwc": "native: torch.channels_last (NHWC data permuted to its logical NCHW view is channels_last "
                       "in memory; F.conv2d keeps that format)",
        "subnormals": "bfloat16 on the CPU: flushed or kept as load() measures on this CPU (oneDNN's AVX-512 BF16 "
                      "and AMX kernels flush); kept in float32 and float64",
        "pool_max": "native: F.max_pool2d", "pool_avg": "native: F.avg_pool2d",
        "pool_padding": "native: padding=(ph, pw)",
        "pool_asymmetric": "emulated: F.pad (-inf for the maximum), then padding=0; an average as window sums "
                           "(divisor_override=1) over counted cells",
        "pool_same": "emulated: F.pad with TensorFlow's pads (torch pooling has no 'same')",
        "pool_include_pad": "native: count_include_pad=True", "pool_exclude_pad": "native: count_include_pad=False",
        "pool_ceil": "native: ceil_mode=True",
        "transpose": "native: F.conv_transpose2d, weight (C_in, C_out, kh, kw)", "transpose_stride": "native: stride=",
        "transpose_dilation": "native: dilation=",
        "transpose_crop": "native: padding=p, output_padding= when the crop is symmetric; else sliced",
        "transpose_same": "emulated: TensorFlow's crop sliced off (ConvTranspose2d(padding='same') fails only at "
                          "forward, pytorch#95123)",
    }

    def gpu_unavailable_reason(self) -> str | None:
        torch = self.lib
        if torch.version.cuda is None:
            return f"no GPU: torch {torch.__version__} is a CPU-only build"
        if not torch.cuda.is_available():
            return "no GPU: torch.cuda.is_available() is False"
        return None

    def device_description(self, device: str) -> str:
        return self.lib.cuda.get_device_name(0) if device == "gpu" else "cpu"

    #: Strict mode: (object under ``torch``, attribute, value).  No reduced-
    #: precision reductions in half-precision matmuls, and a deterministic,
    #: non-autotuned cuDNN; TF32 off comes from :meth:`_tf32_off`.
    STRICT = (("backends.cuda.matmul", "allow_fp16_reduced_precision_reduction", False),
              ("backends.cuda.matmul", "allow_bf16_reduced_precision_reduction", False),
              ("backends.cudnn", "benchmark", False), ("backends.cudnn", "deterministic", True))
    #: TF32 off, the legacy way (cuDNN convolutions allow it by default).
    LEGACY_TF32 = (("backends.cudnn", "allow_tf32", False), ("backends.cuda.matmul", "allow_tf32", False))
    #: TF32 off, the torch >= 2.9 way.  torch refuses to read the legacy flags
    #: once the two APIs disagree ("a mix of the legacy and new APIs"), so an
    #: adapter uses one API only: this one wherever it exists, for every node.
    FP32_PRECISION = ("backends", "backends.cuda.matmul", "backends.cudnn", "backends.cudnn.conv",
                      "backends.cudnn.rnn")

    def load(self) -> Any:
        import os

        # cuBLAS is deterministic only with a fixed workspace, which must be
        # configured before the first cuBLAS call (an explicit value wins).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch = super().load()
        # 2**-130 (a bfloat16 subnormal) times 1: kept, or flushed to 0 by this CPU's bfloat16 kernel.
        tiny = torch.tensor([[[[2.0 ** -130]]]], dtype=torch.bfloat16)
        kept = torch.nn.functional.conv2d(tiny, torch.ones((1, 1, 1, 1), dtype=torch.bfloat16)).item() != 0
        self.flushes_subnormals = {} if kept else {"cpu": ("bfloat16",)}
        return torch

    def _at(self, path: str) -> Any:
        return functools.reduce(getattr, path.split("."), self.lib)

    def _tf32_off(self) -> tuple[tuple[str, str, Any], ...]:
        """The settings that turn TF32 off in this torch: the new API if it has it."""
        if hasattr(self.lib.backends, "fp32_precision"):
            return tuple((path, "fp32_precision", "ieee") for path in self.FP32_PRECISION)
        return self.LEGACY_TF32

    def _strict(self) -> tuple[tuple[str, str, Any], ...]:
        return self._tf32_off() + self.STRICT

    @contextlib.contextmanager
    def numerics(self, device: str, dtype: str, precision: str = "strict") -> Iterator[None]:
        if precision != "strict":
            yield  # fast: torch's defaults, untouched
            return
        torch = self.lib
        strict = self._strict()
        saved = [(path, attr, getattr(self._at(path), attr)) for path, attr, _ in strict]
        saved_deterministic = torch.are_deterministic_algorithms_enabled()
        try:
            for path, attr, value in strict:
                setattr(self._at(path), attr, value)
                confirm(f"torch.{path}.{attr}", value, getattr(self._at(path), attr))
            torch.use_deterministic_algorithms(True)
            confirm("torch.are_deterministic_algorithms_enabled()", True, torch.are_deterministic_algorithms_enabled())
            yield
        finally:
            for path, attr, value in reversed(saved):
                setattr(self._at(path), attr, value)
            torch.use_deterministic_algorithms(saved_deterministic)

    def precision_settings(self) -> dict[str, Any]:
        torch = self.lib
        out = {f"torch.{path}.{attr}": getattr(self._at(path), attr) for path, attr, _ in self._strict()}
        out["torch.are_deterministic_algorithms_enabled()"] = torch.are_deterministic_algorithms_enabled()
        return out

    def determinism(self, device: str, precision: str) -> str | None:
        if precision == "strict":
            return None
        return ("fast mode keeps torch's defaults (cudnn.deterministic False, no deterministic algorithms), "
                "which do not promise bitwise repeatability")

    # -- data across the boundary ----------------------------------------------

    def asarray(self, a: np.ndarray, *, dtype: str, device: str) -> Any:
        # torch.tensor refuses negative strides (a flipped kernel, say).
        return self.lib.tensor(np.ascontiguousarray(a), dtype=getattr(self.lib, dtype), device=_device(device))

    def to_numpy(self, x: Any) -> np.ndarray:
        x = x.detach().cpu()
        x = x.float() if x.dtype == self.lib.bfloat16 else x  # NumPy has no bfloat16
        return x.numpy().copy()  # .numpy() shares memory with a CPU tensor

    def device_of(self, x: Any) -> str:
        return "gpu" if x.device.type == "cuda" else "cpu"

    def dtype_of(self, x: Any) -> str:
        return str(x.dtype).removeprefix("torch.")

    # -- verbs -----------------------------------------------------------------

    def corr2d(self, X: Any, K: Any) -> Any:
        h, w = K.shape
        Y = self.lib.zeros(output_shape(X.shape, K.shape), dtype=X.dtype, device=X.device)
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
        return Y

    def conv2d(self, X: Any, K: Any) -> Any:
        # Raises RuntimeError itself when the kernel does not fit.
        return self.lib.nn.functional.conv2d(X[None, None], K[None, None])[0, 0]

    def corr2d_matmul(self, X: Any, K: Any) -> Any:
        kh, kw = K.shape
        # The (oh, ow, kh, kw) windows, a view; unfold raises when the kernel does not fit.
        windows = X.unfold(0, kh, 1).unfold(1, kw, 1)
        oh, ow = windows.shape[:2]
        return (windows.reshape(oh * ow, kh * kw) @ K.reshape(kh * kw)).reshape(oh, ow)

    def conv2d_layer(self, X: Any, K: Any, b: Any) -> Any:
        layer = self._layer(K.shape, dtype=X.dtype, device=X.device)
        with self.lib.no_grad():
            layer.weight.copy_(K)
            layer.bias.copy_(b)
        return layer(X).detach()

    def layer_parameters(self, kernel_size, *, dtype, device):
        layer = self._layer(kernel_size, dtype=getattr(self.lib, dtype), device=_device(device))
        return {name: tuple(p.shape) for name, p in layer.named_parameters()}

    def layer_step(self, X: Any, K: Any, b: Any, Y: Any, *, lr: float) -> dict[str, Any]:
        torch = self.lib
        # The forward through the built-in op, as on every framework (autograd cannot follow the
        # book's corr2d in TensorFlow and MXNet, which write into a buffer).
        layer = self._layer(K.shape, dtype=X.dtype, device=X.device, corr=self.conv2d)
        with torch.no_grad():
            layer.weight.copy_(K)
            layer.bias.copy_(b)
        optimizer = torch.optim.SGD(layer.parameters(), lr=lr)
        optimizer.zero_grad()
        ((layer(X) - Y) ** 2).sum().backward()
        optimizer.step()
        return {name: p.detach().clone() for name, p in layer.named_parameters()}

    def receptive_field(self, X: Any, K1: Any, K2: Any) -> tuple[Any, Any]:
        x = X.detach().clone().requires_grad_()
        Y = self.conv2d(x, K1)
        Z = self.conv2d(Y, K2)
        dZ, = self.lib.autograd.grad(Z.sum(), x, retain_graph=True)
        dY00, = self.lib.autograd.grad(Y[0, 0], x)
        return dZ, dY00

    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        torch = self.lib
        # Initialised on the CPU, so a seed gives the same kernel on every
        # device; the fork restores the caller's RNG state (CPU and CUDA).
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            conv2d = torch.nn.Conv2d(1, 1, kernel_size, bias=False, dtype=X.dtype).to(X.device)
        if initial is not None:
            with torch.no_grad():
                conv2d.weight.copy_(initial.reshape(conv2d.weight.shape))
        start = conv2d.weight.detach().reshape(kernel_size).clone()
        X, Y = X.reshape(1, 1, *X.shape), Y.reshape(1, 1, *Y.shape)
        losses = torch.zeros(steps, dtype=X.dtype, device=X.device)
        for i in range(steps):
            l = ((conv2d(X) - Y) ** 2).sum()
            conv2d.zero_grad()
            l.backward()
            with torch.no_grad():
                conv2d.weight -= lr * conv2d.weight.grad
                losses[i] = l
        return Trajectory(initial=start, losses=losses, kernel=conv2d.weight.detach().reshape(kernel_size).clone())

    def conv_general(self, X, K, *, stride, dilation, padding, padding_mode, groups, layout="nchw"):
        torch = self.lib
        if layout == "nhwc":  # logical NCHW views of channels-last memory; the result viewed back as NHWC
            Y = self.conv_general(X.permute(0, 3, 1, 2), K.permute(3, 2, 0, 1), stride=stride, dilation=dilation,
                                  padding=padding, padding_mode=padding_mode, groups=groups)
            return Y.permute(0, 2, 3, 1)
        F = torch.nn.functional
        pads, _ = general_geometry(X.shape, K.shape, stride=stride, dilation=dilation, padding=padding,
                                   padding_mode=padding_mode, groups=groups)
        (t, b), (le, r) = pads
        native = 0
        if padding_mode == "zeros" and padding == "same" and tuple(stride) == (1, 1):
            native = "same"
        elif padding_mode == "zeros" and t == b and le == r:
            native = (t, le)
        elif padding_mode == "symmetric":
            X = _symmetric_pad(torch, X, pads)
        else:
            X = F.pad(X, (le, r, t, b), mode="constant" if padding_mode == "zeros" else padding_mode)
        return F.conv2d(X, K, stride=tuple(stride), padding=native, dilation=tuple(dilation), groups=groups)

    def conv_general_vjp(self, X, K, dY, **params):
        x, k = X.detach().clone().requires_grad_(), K.detach().clone().requires_grad_()
        Y = self.conv_general(x, k, **params)
        dX, dK = self.lib.autograd.grad(Y, (x, k), grad_outputs=dY)
        return dX, dK

    def conv_general_backprop(self, X, K, dY, *, stride, dilation, padding, padding_mode, groups, layout="nchw"):
        F, grad = self.lib.nn.functional, self.lib.nn.grad
        if layout == "nhwc":
            dX, dK = self.conv_general_backprop(X.permute(0, 3, 1, 2), K.permute(3, 2, 0, 1), dY.permute(0, 3, 1, 2),
                                                stride=stride, dilation=dilation, padding=padding,
                                                padding_mode=padding_mode, groups=groups)
            return dX.permute(0, 2, 3, 1), dK.permute(2, 3, 1, 0)
        pads, _ = general_geometry(X.shape, K.shape, stride=stride, dilation=dilation, padding=padding,
                                   padding_mode=padding_mode, groups=groups)
        if padding_mode != "zeros":
            raise ValueError("torch.nn.grad differentiates the convolution, not a padding mode")
        (t, b), (le, r) = pads
        args = {"stride": tuple(stride), "dilation": tuple(dilation), "groups": groups}
        if t == b and le == r:
            return (grad.conv2d_input(X.shape, K, dY, padding=(t, le), **args),
                    grad.conv2d_weight(X, K.shape, dY, padding=(t, le), **args))
        # Asymmetric pads: the gradient with respect to the zero-padded input, cropped (the adjoint of a zero pad).
        Xp = F.pad(X, (le, r, t, b))
        dXp = grad.conv2d_input(Xp.shape, K, dY, padding=0, **args)
        return (dXp[:, :, t:t + X.shape[2], le:le + X.shape[3]],
                grad.conv2d_weight(Xp, K.shape, dY, padding=0, **args))

    def pool2d(self, X, *, kind, window, stride, padding, ceil_mode, count_include_pad):
        F = self.lib.nn.functional
        pads, shape = pool_geometry(X.shape, kind=kind, window=window, stride=stride, padding=padding,
                                ceil_mode=ceil_mode, count_include_pad=count_include_pad)
        (t, b), (le, r) = pads
        args = {"kernel_size": tuple(window), "stride": tuple(stride), "ceil_mode": ceil_mode}
        if t == b and le == r and padding != "same":
            if kind == "max":
                return F.max_pool2d(X, padding=(t, le), **args)
            return F.avg_pool2d(X, padding=(t, le), count_include_pad=count_include_pad, **args)
        # Pads by hand (torch pools with symmetric pads only): torch's ceil rule then sees no padding, and
        # may keep a last window that starts in the trailing pad; the spec's sizes crop it (found by the
        # generated pooling property: 3 wide, window 1, right pad 1, ceil_mode gave a fourth, -inf column).
        oh, ow = shape[2:]
        if kind == "max":
            return F.max_pool2d(F.pad(X, (le, r, t, b), value=float("-inf")), **args)[:, :, :oh, :ow]
        # An average over asymmetric pads: the window sums over zero padding, divided by the cells counted.
        sums = F.avg_pool2d(F.pad(X, (le, r, t, b)), divisor_override=1, **args)
        inside = self.lib.ones((1, 1, *X.shape[2:]), dtype=X.dtype, device=X.device)
        inside = F.pad(inside, (le, r, t, b), value=1.0 if count_include_pad else 0.0)
        return (sums / F.avg_pool2d(inside, divisor_override=1, **args))[:, :, :oh, :ow]

    def conv_transpose(self, X, K, *, stride, dilation, padding, output_padding):
        F = self.lib.nn.functional
        crops, shape = transpose_geometry(X.shape, K.shape, stride=stride, dilation=dilation, padding=padding,
                                          output_padding=output_padding)
        (t, b), (le, r) = crops
        args = {"stride": tuple(stride), "dilation": tuple(dilation), "output_padding": tuple(output_padding)}
        if t == b and le == r and padding != "same":
            return F.conv_transpose2d(X, K, padding=(t, le), **args)
        Y = F.conv_transpose2d(X, K, padding=0, **args)
        return Y[:, :, t:Y.shape[2] - b, le:Y.shape[3] - r]

    def _layer(self, kernel_size, *, dtype, device, corr: Any = None) -> Any:
        """The book's ``Conv2D``, defined on first use because it subclasses ``nn.Module``; its
        forward is ``corr`` (default: the book's ``corr2d``)."""
        if self._conv2d_class is None:
            torch = self.lib

            class Conv2D(torch.nn.Module):
                def __init__(self, kernel_size, *, dtype, device, corr):
                    super().__init__()
                    self.weight = torch.nn.Parameter(torch.rand(kernel_size, dtype=dtype, device=device))
                    self.bias = torch.nn.Parameter(torch.zeros(1, dtype=dtype, device=device))
                    self.corr = corr

                def forward(self, x):
                    return self.corr(x, self.weight) + self.bias

            self._conv2d_class = Conv2D
        return self._conv2d_class(kernel_size, dtype=dtype, device=device, corr=corr or self.corr2d)


def _device(device: str) -> str:
    return "cuda" if device == "gpu" else "cpu"


def _symmetric_pad(torch, X, pads):
    """Symmetric padding (the edge repeated in the mirror) of NCHW ``X``, from torch's own slices."""
    (t, b), (le, r) = pads
    H, W = X.shape[2], X.shape[3]
    X = torch.cat([X[:, :, :t].flip(2), X, X[:, :, H - b:].flip(2)], dim=2)
    return torch.cat([X[:, :, :, :le].flip(3), X, X[:, :, :, W - r:].flip(3)], dim=3)
