"""7.2.2 Convolutional Layers: the book's ``Conv2D`` class, its registered
parameters and its forward pass ``corr2d(X, weight) + bias``."""

import pytest

import spec
from tests import support


@pytest.mark.parametrize("case, op", support.case_params(spec.by_op("conv_layer")))
def test_conv2d_layer_forward(target, case, op):
    support.check_correlation(target, case, op)


@pytest.mark.parametrize("case", spec.cases("conv_layer", kind="parameters"), ids=lambda c: c.id)
def test_conv2d_layer_parameters(target, case):
    size = tuple(case.data["kernel_size"])
    got = support.call(target.backend, "layer_parameters", size, dtype=target.dtype, device=target.device)
    expected = {name: tuple(shape) for name, shape in case.data["expected"].items()}
    got = {name: tuple(shape) for name, shape in got.items()}
    support.check(got == expected, f"Conv2D{size} registers parameters {got} with the module system; expected "
                  f"{expected} (a weight of the kernel's shape and a scalar bias)")
