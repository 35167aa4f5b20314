"""A simulated GPU, for exercising the GPU code paths on a machine without one.

:class:`SimulatedGPU` is the NumPy reference adapter with a second device:
an array "on the GPU" is a NumPy array of the subclass :class:`OnGPU`, and
every verb hands back its results on the device of its inputs.  It conforms,
so the suite must pass it under ``--device gpu``; the broken variants in
``tests/meta/broken.py`` must not.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from backends.base import Trajectory, confirm
from backends.numpy import NumpyBackend


class OnGPU(np.ndarray):
    """A NumPy array that the simulated GPU claims as its own."""


def place(x: Any, device: str) -> Any:
    if isinstance(x, tuple):
        return tuple(place(v, device) for v in x)
    if isinstance(x, dict):
        return {k: place(v, device) for k, v in x.items()}
    if isinstance(x, Trajectory):
        return Trajectory(*(place(v, device) for v in (x.initial, x.losses, x.kernel)))
    if not isinstance(x, np.ndarray):
        return x
    return np.asarray(x).view(OnGPU) if device == "gpu" else np.asarray(x)


class SimulatedGPU(NumpyBackend):
    """Conforming; its 'gpu' is NumPy memory tagged :class:`OnGPU`."""

    dtypes = {device: ("float16", "float32", "float64") for device in ("cpu", "gpu")}

    def gpu_unavailable_reason(self) -> str | None:
        return None

    def device_description(self, device: str) -> str:
        return "simulated GPU (NumPy arrays tagged OnGPU)" if device == "gpu" else "cpu"

    def asarray(self, a: np.ndarray, *, dtype: str, device: str) -> Any:
        return place(super().asarray(a, dtype=dtype, device="cpu"), device)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(super().to_numpy(x))

    def device_of(self, x: Any) -> str:
        return "gpu" if isinstance(x, OnGPU) else "cpu"

    def _on(self, *inputs: Any) -> str:
        return "gpu" if any(isinstance(x, OnGPU) for x in inputs) else "cpu"

    def corr2d(self, X, K):
        return place(super().corr2d(np.asarray(X), np.asarray(K)), self._on(X, K))

    def conv2d(self, X, K):
        return place(super().conv2d(np.asarray(X), np.asarray(K)), self._on(X, K))

    def corr2d_matmul(self, X, K):
        return place(super().corr2d_matmul(np.asarray(X), np.asarray(K)), self._on(X, K))

    def conv2d_layer(self, X, K, b):
        return place(super().conv2d_layer(np.asarray(X), np.asarray(K), np.asarray(b)), self._on(X, K, b))

    def layer_step(self, X, K, b, Y, *, lr):
        return place(super().layer_step(*(np.asarray(a) for a in (X, K, b, Y)), lr=lr), self._on(X, K, b, Y))

    def receptive_field(self, X, K1, K2):
        return place(super().receptive_field(*(np.asarray(a) for a in (X, K1, K2))), self._on(X, K1, K2))

    def conv_general(self, X, K, **params):
        return place(super().conv_general(np.asarray(X), np.asarray(K), **params), self._on(X, K))

    def conv_general_vjp(self, X, K, dY, **params):
        return place(super().conv_general_vjp(*(np.asarray(a) for a in (X, K, dY)), **params), self._on(X, K, dY))

    def conv_general_backprop(self, X, K, dY, **params):
        return place(super().conv_general_backprop(*(np.asarray(a) for a in (X, K, dY)), **params),
                     self._on(X, K, dY))

    def conv_transpose(self, X, K, **params):
        return place(super().conv_transpose(np.asarray(X), np.asarray(K), **params), self._on(X, K))

    def pool2d(self, X, **params):
        return place(super().pool2d(np.asarray(X), **params), self._on(X))

    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        t = super().learn_kernel(np.asarray(X), np.asarray(Y), kernel_size=kernel_size, lr=lr, steps=steps,
                                 initial=None if initial is None else np.asarray(initial), seed=seed)
        return place(t, self._on(X, Y))


#: The simulated framework's global switch, TF32 on by default as in cuDNN.
SETTINGS = {"allow_tf32": True}


def round_tf32(a: np.ndarray) -> np.ndarray:
    """float32 values rounded to TF32 (11 significant bits, nearest even)."""
    mantissa, exponent = np.frexp(np.asarray(a, dtype=np.float64))
    return np.ldexp(np.rint(mantissa * 2.0**11) / 2.0**11, exponent).astype(np.float32)


class SimulatedTF32(SimulatedGPU):
    """Conforming in both precision modes: its GPU computes float32
    correlations in TF32 (inputs rounded to 11 bits, float32 sums) while the
    switch is on, like cuDNN; strict mode turns it off, reads it back and
    restores it."""

    @contextlib.contextmanager
    def numerics(self, device: str, dtype: str, precision: str = "strict"):
        saved = SETTINGS["allow_tf32"]
        try:
            if precision == "strict":
                self._switch(False)
                confirm("simulated allow_tf32", False, SETTINGS["allow_tf32"])
            yield
        finally:
            SETTINGS["allow_tf32"] = saved

    def _switch(self, value: bool) -> None:
        SETTINGS["allow_tf32"] = value

    def precision_settings(self) -> dict:
        return dict(SETTINGS)

    def _tf32(self, X, K):
        if isinstance(X, OnGPU) and X.dtype == np.float32 and SETTINGS["allow_tf32"]:
            return round_tf32(X), round_tf32(K)
        return np.asarray(X), np.asarray(K)

    def corr2d(self, X, K):
        return place(NumpyBackend.corr2d(self, *self._tf32(X, K)), self._on(X, K))

    def conv2d(self, X, K):
        return place(NumpyBackend.conv2d(self, *self._tf32(X, K)), self._on(X, K))

    def corr2d_matmul(self, X, K):
        return place(NumpyBackend.corr2d_matmul(self, *self._tf32(X, K)), self._on(X, K))
