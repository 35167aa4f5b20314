"""The fixed cases an adapter ships with itself (``Backend.cases``: an out-of-tree adapter cannot add to
an installed suite's ``spec/cases``), run on that adapter's targets only, by the same checks as the
conventions section's cases (a case with a cotangent also through ``conv_general_vjp``).  They are what an
adapter's own known-deviation list can name: a deviation that only a generated property found becomes one
of these, and its entry lists it.  Collected only where a selected adapter ships cases."""

from tests import support

CHECKS = {"general": support.check_general, "general_error": support.check_general_error,
          "pool": support.check_pool, "pool_error": support.check_pool_error,
          "transpose": support.check_transpose, "transpose_error": support.check_transpose_error}


def test_adapter_case(target, adapter_case, op):
    if op == "conv_general_vjp":
        support.check_general_vjp(target, adapter_case)
    else:
        CHECKS[adapter_case.kind](target, adapter_case)
