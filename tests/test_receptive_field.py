"""7.2.6 Feature Map and Receptive Field: gradients through two stacked
cross-correlations show which inputs each output sees."""

import numpy as np
import pytest

import spec
from spec import oracle
from tests import support

CASES = spec.cases("receptive_field")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_receptive_field(target, case):
    X, K1, K2 = (target.asarray(case.input(n)) for n in ("X", "K1", "K2"))
    grad_z, grad_y00 = support.call(target.backend, "receptive_field", X, K1, K2)
    expected_z, expected_y00 = case.array("expected", "grad_z"), case.array("expected", "grad_y00")
    x, k1, k2 = (case.input(n) for n in ("X", "K1", "K2"))
    z_size = (x.shape[0] - k1.shape[0] - k2.shape[0] + 2) * (x.shape[1] - k1.shape[1] - k2.shape[1] + 2)
    mistakes = {f"the gradient of Z.mean() (1/{z_size} of that of Z.sum())": expected_z / z_size,
                "the gradient of Y.sum(), not of Z.sum() (the chain rule stopped at the first layer)":
                    _first_layer_only(x.shape, k1)}
    mistakes = {name: alt for name, alt in mistakes.items() if not np.array_equal(alt, expected_z)}
    # Both gradients are sums of integer products small enough to be exact in every dtype tested
    # (spec/build.py: the tolerance rule 'exact' falls back to the error bound where they are not).
    support.assert_conforms(target, grad_z, expected_z, tolerance=0.0, what=f"dZ/dX on {case.id}",
                            hypotheses=mistakes)
    support.assert_conforms(target, grad_y00, expected_y00, tolerance=0.0, what=f"dY[0,0]/dX on {case.id}")
    got_z = target.backend.to_numpy(grad_z)
    got_y = target.backend.to_numpy(grad_y00)
    support.check(np.array_equal(got_z != 0, expected_z != 0),
                  f"the outputs of Z should see the inputs {np.argwhere(expected_z != 0).tolist()}; "
                  f"its gradient is non-zero at {np.argwhere(got_z != 0).tolist()}")
    support.check(np.array_equal(got_y != 0, expected_y00 != 0),
                  f"Y[0, 0] should see exactly its {k1.shape[0]}x{k1.shape[1]} window; its gradient is "
                  f"non-zero at {np.argwhere(got_y != 0).tolist()}")


def _first_layer_only(x_shape, K1):
    """``d Y.sum() / dX``: the chain rule stopped at the first layer."""
    y_shape = (x_shape[0] - K1.shape[0] + 1, x_shape[1] - K1.shape[1] + 1)
    return oracle.corr2d_input_grad(x_shape, K1, np.ones(y_shape))
