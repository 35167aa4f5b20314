"""7.2.2 Convolutional Layers: the book's ``Conv2D`` class, its registered
parameters, its forward pass ``corr2d(X, weight) + bias``, and one step of the
framework's own optimizer over the parameters the module system enumerates
(a bias kept outside it does not move)."""

import numpy as np
import pytest

import spec
from spec import learning, numerics
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


@pytest.mark.parametrize("case", spec.cases("conv_layer", kind="layer_step"), ids=lambda c: c.id)
def test_conv2d_layer_step(target, case):
    X, K, Y = (numerics.container(case.input(n), target.dtype) for n in ("X", "K", "Y"))
    b = numerics.container(np.array([case.data["inputs"]["b"]]), target.dtype)
    lr = case.data["lr"]
    got = support.call(target.backend, "layer_step", *(target.asarray(a) for a in (X, K, b, Y)), lr=lr)
    support.check(isinstance(got, dict) and set(got) == {"weight", "bias"},
                  f"the optimizer was given the parameters {sorted(got) if isinstance(got, dict) else got!r}; "
                  "expected ['bias', 'weight']: the module system enumerates both")
    # Expected: the exact step from the inputs as the target holds them (rounded to its dtype).
    X64, K64, Y64, b64 = (np.asarray(a, dtype=np.float64) for a in (X, K, Y, b))
    weight, bias = learning.layer_step(X64, K64, float(b64[0]), Y64, lr=lr)
    tol_w, tol_b = learning.layer_step_bounds(X64, K64, float(b64[0]), Y64, lr=lr, dtype=target.arithmetic)
    unmoved = {"weight": K64, "bias": b64}
    # An optimizer that holds its learning rate in float32 (a float32 scalar or variable, whatever the
    # weights' dtype) takes this step; it differs from the exact one only where lr is not a float32.
    lr32 = float(np.float32(lr))
    held32 = dict(zip(("weight", "bias"), learning.layer_step(X64, K64, float(b64[0]), Y64, lr=lr32), strict=True))
    for name, expected, tol in (("weight", weight, tol_w), ("bias", bias, tol_b)):
        value = support.read_result(target, got[name], what=f"{name} after one step on {case.id}")
        if value.shape == expected.shape and np.array_equal(value, unmoved[name]):
            pytest.fail(f"the {name} did not move in one optimizer step on {case.id}: it is not a parameter the "
                        "module system hands to the optimizer (a plain tensor kept beside the module?)",
                        pytrace=False)
        support.assert_conforms(target, got[name], expected, tolerance=tol, what=f"{name} after one step on "
                                f"{case.id} ({target.id})", hypotheses={
                                    "the step follows the gradient of the mean, not of the sum":
                                        unmoved[name] + (expected - unmoved[name]) / Y64.size,
                                    "the step is taken twice": 2 * expected - unmoved[name],
                                    **({f"the learning rate held in float32 ({lr32!r} for {lr!r})": held32[name]}
                                       if lr32 != lr else {})})
