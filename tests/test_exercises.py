"""7.2.8 Exercises: diagonal edges under K, Xᵀ and Kᵀ; hand-designed kernels
(horizontal edge, second and third differences, Laplacian, binomial blur,
identity); cross-correlation written as one matrix product."""

import pytest

import spec
from tests import support


@pytest.mark.parametrize("case, op", support.case_params(spec.by_op("exercises")))
def test_exercise(target, case, op):
    support.check_correlation(target, case, op)
