"""7.2.5 Cross-Correlation and Convolution: a cross-correlation must not flip
the kernel; one that does (true convolution, as Flux's `Conv`) is named."""

import pytest

import spec
from tests import support


@pytest.mark.parametrize("case, op", support.case_params(spec.by_op("conv_vs_corr")))
def test_conv_vs_corr(target, case, op):
    support.check_correlation(target, case, op)
