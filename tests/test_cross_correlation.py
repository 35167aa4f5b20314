"""7.2.1 The Cross-Correlation Operation: the 3x3 example, the output-shape
rule, kernels larger than the input, and seeded random values."""

import numpy as np
import pytest

import spec
from tests import support


@pytest.mark.parametrize("case, op", support.case_params(spec.by_op("cross_correlation")))
def test_cross_correlation(target, case, op):
    support.check_correlation(target, case, op)


@pytest.mark.parametrize("case, op", support.case_params(spec.by_op("cross_correlation", kind="error")))
def test_kernel_larger_than_input(target, case, op):
    X, K = target.asarray(case.input("X")), target.asarray(case.input("K"))
    try:
        result = support.call(target.backend, op, X, K, expect_error=True)
    except Exception:
        return  # any clear error will do; the framework's own message is kept in its traceback
    got = target.backend.to_numpy(result)
    pytest.fail(
        f"{op}: a {case.input('K').shape} kernel on a {case.input('X').shape} input has no valid position, "
        f"but the adapter returned an array of shape {np.shape(got)} instead of raising. The rule: the output "
        "is (nh-kh+1) x (nw-kw+1), and there is no position when kh > nh or kw > nw. The book's corr2d "
        "allocates zeros((nh-kh+1, nw-kw+1)), a valid empty array for a kernel one larger: call "
        "backends.base.output_shape(X.shape, K.shape) first, which raises ValueError", pytrace=False)
