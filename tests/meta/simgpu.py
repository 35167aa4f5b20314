"""A simulated GPU, for exercising the GPU code paths on a machine without one.

:class:`SimulatedGPU` is the NumPy reference adapter with a second device:
an array "on the GPU" is a NumPy array of the subclass :class:`OnGPU`, and
every verb hands back its results on the device of its inputs.  It conforms,
so the suite must pass it under ``--device gpu``; the broken variants in
``tests/meta/broken.py`` must not.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backends.base import Trajectory
from backends.numpy import NumpyBackend


class OnGPU(np.ndarray):
    """A NumPy array that the simulated GPU claims as its own."""


def place(x: Any, device: str) -> Any:
    if isinstance(x, tuple):
        return tuple(place(v, device) for v in x)
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

    def receptive_field(self, X, K1, K2):
        return place(super().receptive_field(*(np.asarray(a) for a in (X, K1, K2))), self._on(X, K1, K2))

    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        t = super().learn_kernel(np.asarray(X), np.asarray(Y), kernel_size=kernel_size, lr=lr, steps=steps,
                                 initial=None if initial is None else np.asarray(initial), seed=seed)
        return place(t, self._on(X, Y))
