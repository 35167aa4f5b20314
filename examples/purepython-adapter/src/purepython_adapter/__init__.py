"""A conv-conformance adapter whose "framework" is plain Python.

Native arrays are :class:`Grid` objects: nested lists of Python floats
(IEEE binary64), on the CPU.  Every verb is written in plain Python operations;
NumPy appears only at the boundary, in ``asarray`` and ``to_numpy``.

This is an example of an out-of-tree adapter.  It implements the minimum the
suite needs for a verdict (``asarray``, ``to_numpy``, ``device_of``,
``dtype_of`` and a correlation verb) plus the verbs that are easy without a
framework, and leaves ``learn_kernel`` undefined: those tests skip with
"not implemented by the adapter".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backends.base import Backend, output_shape

__version__ = "0.1.0"
__all__ = ["Conv2D", "Grid", "PurePythonBackend", "__version__"]


class Grid:
    """A 1-D or 2-D array of Python floats: ``data`` is a list of floats or a
    list of equally long rows.  Always float64, always on the CPU."""

    __slots__ = ("data", "shape")

    def __init__(self, data: list, shape: tuple[int, ...]) -> None:
        self.data = data
        self.shape = shape

    @classmethod
    def zeros(cls, shape: tuple[int, ...]) -> Grid:
        if len(shape) == 1:
            return cls([0.0] * shape[0], tuple(shape))
        rows, cols = shape
        return cls([[0.0] * cols for _ in range(rows)], (rows, cols))

    def copy(self) -> Grid:
        if len(self.shape) == 1:
            return Grid(list(self.data), self.shape)
        return Grid([list(row) for row in self.data], self.shape)

    def __repr__(self) -> str:
        return f"Grid({self.data!r})"


class PurePythonBackend(Backend):
    name = "purepython"
    # load() imports this and version() reads its __version__: the "framework" is this package.
    module = "purepython_adapter"
    # Python floats are binary64; there is nothing narrower and no GPU.
    dtypes = {"cpu": ("float64",)}
    train_dtypes = ("float64",)
    # Everything but the kernel-learning loop, which needs autograd.
    contract = 2  # the adapter contract's version it was written for (backends.base.CONTRACTS)
    verbs = ("corr2d", "conv2d", "corr2d_matmul", "conv2d_layer", "layer_parameters", "receptive_field")

    def gpu_unavailable_reason(self) -> str | None:
        return "plain Python runs on the CPU only"

    # -- data across the boundary (the only place NumPy is used) -------------

    def asarray(self, a: np.ndarray, *, dtype: str, device: str) -> Any:
        if dtype != "float64" or device != "cpu":
            raise ValueError(f"{self.name} holds float64 on the cpu only, not {dtype} on {device}")
        a = np.asarray(a, dtype=np.float64)
        if a.ndim not in (1, 2):
            raise ValueError(f"{self.name} holds 1-D and 2-D arrays only, not shape {a.shape}")
        return Grid(a.tolist(), tuple(a.shape))  # tolist() gives Python floats: exact

    def to_numpy(self, x: Any) -> np.ndarray:
        if not isinstance(x, Grid):
            raise TypeError(f"expected a purepython_adapter.Grid, got {type(x).__name__}")
        return np.array(x.data, dtype=np.float64).reshape(x.shape)

    def device_of(self, x: Any) -> str:
        return "cpu"

    def dtype_of(self, x: Any) -> str:
        return "float64"

    # -- the chapter's verbs, in plain Python --------------------------------

    def corr2d(self, X: Any, K: Any) -> Any:
        """The book's double loop: each output is the sum over its window."""
        h, w = K.shape
        Y = Grid.zeros(output_shape(X.shape, K.shape))  # raises for a kernel larger than X
        x, k = X.data, K.data
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y.data[i][j] = sum(x[i + a][j + b] * k[a][b] for a in range(h) for b in range(w))
        return Y

    def conv2d(self, X: Any, K: Any) -> Any:
        """A second formulation in place of a built-in op: shift and add, one
        kernel tap at a time (a different summation order from ``corr2d``)."""
        h, w = K.shape
        oh, ow = output_shape(X.shape, K.shape)
        Y = Grid.zeros((oh, ow))
        for a in range(h):
            for b in range(w):
                tap = K.data[a][b]
                for i in range(oh):
                    row, src = Y.data[i], X.data[i + a]
                    for j in range(ow):
                        row[j] += tap * src[j + b]
        return Y

    def corr2d_matmul(self, X: Any, K: Any) -> Any:
        """im2col: one row per output position holding its window, times the
        kernel as a column; the ``(oh*ow, 1)`` product reshaped to ``(oh, ow)``."""
        h, w = K.shape
        oh, ow = output_shape(X.shape, K.shape)
        x = X.data
        im2col = [[x[i + a][j + b] for a in range(h) for b in range(w)] for i in range(oh) for j in range(ow)]
        column = [[K.data[a][b]] for a in range(h) for b in range(w)]
        product = _matmul(im2col, column)
        return Grid([[product[i * ow + j][0] for j in range(ow)] for i in range(oh)], (oh, ow))

    def conv2d_layer(self, X: Any, K: Any, b: Any) -> Any:
        layer = Conv2D(K.shape)
        layer.weight = K.copy()
        layer.bias = b.copy()
        return layer(X, self.corr2d)

    def layer_parameters(self, kernel_size, *, dtype, device):
        if dtype != "float64" or device != "cpu":
            raise ValueError(f"{self.name} holds float64 on the cpu only, not {dtype} on {device}")
        return {name: p.shape for name, p in Conv2D(tuple(kernel_size)).parameters().items()}

    def receptive_field(self, X: Any, K1: Any, K2: Any) -> tuple[Any, Any]:
        """No autograd here: the gradients by hand.  For ``Y = corr(X, K)``,
        ``dL/dX`` scatters ``dL/dY[i, j] * K`` into the window at ``(i, j)``."""
        Y = self.corr2d(X, K1)
        Z = self.corr2d(Y, K2)
        ones = Grid([[1.0] * Z.shape[1] for _ in range(Z.shape[0])], Z.shape)
        dZ_dX = _corr2d_backward(X.shape, K1, _corr2d_backward(Y.shape, K2, ones))
        seed = Grid.zeros(Y.shape)
        seed.data[0][0] = 1.0
        return dZ_dX, _corr2d_backward(X.shape, K1, seed)

    # learn_kernel is deliberately not defined: Backend.learn_kernel raises
    # NotImplementedError and the suite reports "not implemented by the adapter".


class Conv2D:
    """The book's ``Conv2D`` layer.  Plain Python has no module system, so the
    layer enumerates its own parameters."""

    def __init__(self, kernel_size: tuple[int, int]) -> None:
        self.weight = Grid.zeros(kernel_size)
        self.bias = Grid.zeros((1,))

    def parameters(self) -> dict[str, Grid]:
        return {"weight": self.weight, "bias": self.bias}

    def __call__(self, x: Grid, corr2d) -> Grid:
        Y = corr2d(x, self.weight)
        bias = self.bias.data[0]
        return Grid([[v + bias for v in row] for row in Y.data], Y.shape)


def _matmul(A: list[list[float]], B: list[list[float]]) -> list[list[float]]:
    """``A @ B`` for lists of rows."""
    columns = list(zip(*B, strict=True))
    return [[sum(a * b for a, b in zip(row, col, strict=True)) for col in columns] for row in A]


def _corr2d_backward(x_shape: tuple[int, int], K: Grid, dY: Grid) -> Grid:
    """Gradient of ``sum(corr2d(X, K) * dY)`` with respect to ``X``."""
    dX = Grid.zeros(x_shape)
    h, w = K.shape
    for i in range(dY.shape[0]):
        for j in range(dY.shape[1]):
            g = dY.data[i][j]
            for a in range(h):
                for b in range(w):
                    dX.data[i + a][j + b] += g * K.data[a][b]
    return dX
