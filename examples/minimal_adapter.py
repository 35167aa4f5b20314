"""The smallest adapter that can earn a verdict: data across the boundary and the book's corr2d.

Run it from the suite's checkout:
    PYTHONPATH=examples pytest --backend=minimal_adapter:MinimalBackend
"""

import numpy as np

from backends.base import Backend, output_shape


class MinimalBackend(Backend):
    module = "numpy"  # the framework this adapter tests; NumPy here, to keep the example short
    contract = 2  # the version of the adapter contract it was written for (backends.base.CONTRACTS)
    verbs = ("corr2d",)  # the manifest: every other verb is declared absent, and skips as such

    def asarray(self, a, *, dtype, device):
        return np.array(a, dtype=dtype)

    def to_numpy(self, x):
        return np.array(x)

    def device_of(self, x):
        return "cpu"

    def dtype_of(self, x):
        return str(x.dtype)

    def corr2d(self, X, K):
        h, w = K.shape
        Y = np.zeros(output_shape(X.shape, K.shape), dtype=X.dtype)  # raises for a kernel larger than X
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
        return Y
