"""An out-of-tree adapter that takes the reference adapter's registered name:
importing it must fail, naming both classes (it may never replace numpy)."""

from backends.numpy import NumpyBackend


class ClaimsNumpy(NumpyBackend):
    name = "numpy"
