"""What the spec asks of one target, as a set of distinct checks.

A *check* is ``(test function, case id, op)`` (``None`` where a test has no
case or no op): the same check run twice is still one check, whatever its
test id looks like (a duplicate collection, xdist ``--dist each``, a repeat
plugin that appends to ids).  The set is derived from the spec data, never from
what pytest collected, so a check that was dropped or never collected is
missing, by name.

The *core conformance level* (``docs/adapters.md``) is the least a backend must
show before the verdict may say CONFORMANT: on at least one target, every check
of the built-in ``conv2d`` -- or every check of the book's ``corr2d`` -- passed.
"""

from __future__ import annotations

import functools

import spec

#: (test function, spec section, case kind) for the tests that run each case once per op.
PER_OP = (
    ("test_cross_correlation", "cross_correlation", "correlation"),
    ("test_kernel_larger_than_input", "cross_correlation", "error"),
    ("test_conv2d_layer_forward", "conv_layer", "correlation"),
    ("test_edge_detection", "edge_detection", "correlation"),
    ("test_conv_vs_corr", "conv_vs_corr", "correlation"),
    ("test_exercise", "exercises", "correlation"),
)
#: (test function, spec section, case kind) for the tests that run each case once.
PER_CASE = (
    ("test_conv2d_layer_parameters", "conv_layer", "parameters"),
    ("test_conv2d_layer_step", "conv_layer", "layer_step"),
    ("test_receptive_field", "receptive_field", None),
    ("test_conv_general", "conventions", "general"),
    ("test_conv_general_error", "conventions", "general_error"),
    ("test_pool2d", "conventions", "pool"),
    ("test_pool2d_error", "conventions", "pool_error"),
    ("test_conv_transpose", "conventions", "transpose"),
    ("test_conv_transpose_error", "conventions", "transpose_error"),
)
#: Tests that run each general-convolution case with a cotangent once.
GRADIENT = ("test_conv_general_vjp", "conventions")
#: Tests that run each learning case once per trainable target.
LEARNING = ("test_replay_from_own_initialisation", "test_losses_from_fixed_start", "test_contraction_bound",
            "test_seed_decides_the_start")
#: Tests that run once per target, with no case.
PER_TARGET = ("test_numerics_restores_after_an_error", "test_repeat_gives_same_bits",
              # The generated properties (tests/test_generated.py), one check per target each.
              "test_generated_conv_matches_the_oracle", "test_generated_same_is_its_explicit_padding",
              "test_generated_groups_are_concatenated_convolutions", "test_generated_conv_is_linear",
              "test_generated_transpose_is_the_input_gradient", "test_generated_floats_within_the_error_bound",
              "test_generated_pool_matches_the_oracle", "test_generated_corr2d_matches_the_oracle")
#: The verbs of which one must pass everywhere for the core conformance level.
CORE_OPS = ("conv2d", "corr2d")

Check = tuple  # (function, case id or None, op or None)


def name(check: Check) -> str:
    """``test_edge_detection[edge_6x8-conv2d]``: how a check is shown."""
    function, case, op = check
    params = "-".join(p for p in (case, op) if p)
    return f"{function}[{params}]" if params else function


@functools.cache
def _expected(trainable: bool) -> frozenset:
    keys = {(fn, c.id, op) for fn, section, kind in PER_OP for c, op in spec.by_op(section, kind=kind)}
    keys |= {(fn, c.id, None) for fn, section, kind in PER_CASE for c in spec.cases(section, kind=kind)}
    fn, section = GRADIENT
    keys |= {(fn, c.id, None) for c in spec.cases(section, kind="general") if "expected_grad" in c.data}
    keys |= {("test_conv_general_backprop", c.id, None) for c in spec.cases(section, kind="general")
             if "expected_grad" in c.data and c.data["params"].get("padding_mode", "zeros") == "zeros"}
    keys |= {("test_conv_transpose_is_the_gradient", c.id, None) for c in spec.cases(section, kind="general")
             if "expected_grad" in c.data and c.data["params"].get("groups", 1) == 1
             and c.data["params"].get("padding_mode", "zeros") == "zeros"
             and c.data["params"].get("layout", "nchw") == "nchw"}
    if trainable:
        keys |= {(fn, c.id, None) for fn in LEARNING for c in spec.cases("learning_kernel")}
    keys |= {(fn, None, None) for fn in PER_TARGET}
    return frozenset(keys)


def expected(target) -> frozenset:
    """Every check the spec asks of ``target``, with the adapter's own cases (``Backend.cases``)."""
    own = spec.ADAPTER_CASES.get(target.backend.label, ())
    mine = {("test_adapter_case", c.id, None) for c in own}
    mine |= {("test_adapter_case", c.id, "conv_general_vjp") for c in own if "expected_grad" in c.data}
    return _expected(target.dtype in target.backend.train_dtypes) | mine


def core(target, op: str) -> frozenset:
    """The checks of ``op`` that the core level asks of ``target``."""
    return frozenset(k for k in expected(target) if k[2] == op)


def of_test(target, function: str, param: str) -> Check | None:
    """The check a test id names, for a test whose item is not at hand (a
    crashed worker): ``param`` is what follows the target id in the brackets."""
    mine = [k for k in expected(target) if k[0] == function]
    # Longest first, so that a case id that is a prefix of another cannot capture it.
    for key in sorted(mine, key=lambda k: len(name(k)), reverse=True):
        params = "-".join(p for p in key[1:] if p)
        if param == params or (params and param.startswith(params + "-")):
            return key
    return None
