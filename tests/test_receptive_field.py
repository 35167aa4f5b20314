"""7.2.6 Feature Map and Receptive Field: gradients through two stacked 2x2
cross-correlations show which inputs each output sees."""

import numpy as np
import pytest

import spec
from tests import support

CASES = spec.cases("receptive_field")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_receptive_field(target, case):
    X, K1, K2 = (target.asarray(case.input(n)) for n in ("X", "K1", "K2"))
    grad_z, grad_y00 = support.call(target.backend, "receptive_field", X, K1, K2)
    expected_z, expected_y00 = case.array("expected", "grad_z"), case.array("expected", "grad_y00")
    # Both gradients are sums of at most 4 integer products of size <= 16: exact in every dtype tested.
    support.assert_conforms(target, grad_z, expected_z, tolerance=0.0, what="dZ/dX")
    support.assert_conforms(target, grad_y00, expected_y00, tolerance=0.0, what="dY[0,0]/dX")
    got_z = target.backend.to_numpy(grad_z)
    got_y = target.backend.to_numpy(grad_y00)
    assert np.all(got_z != 0), (
        f"the output z should see all 9 inputs; its gradient is zero at {np.argwhere(got_z == 0).tolist()}")
    window = np.zeros((3, 3), dtype=bool)
    window[:2, :2] = True
    assert np.array_equal(got_y != 0, window), (
        f"Y[0, 0] should see exactly its 2x2 window; its gradient is non-zero at {np.argwhere(got_y != 0).tolist()}")
