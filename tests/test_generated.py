"""Generated cases: Hypothesis draws general convolutions (spec/general.py) and checks properties of the
adapter's results against the exact oracle and against each other.

Every draw is labelled; array values come from a drawn seed, so shrinking works on the geometry and
the seed, and the spec case printed with a failure holds the values themselves.  Integer inputs in
[-3, 3] keep every partial sum exact in every dtype (at most 2 * 3 * 3 * 9 = 162 < 256, bfloat16's
exact range), so the oracle comparison has tolerance zero and cannot be flaky; float draws keep
magnitudes in [0.5, 1] (no subnormals: a fixed case documents who flushes them) and use the error
model's tolerance.  Runs are derandomized (the same draws for every backend, every run);
``--max-examples`` (env ``CONV_CONFORMANCE_MAX_EXAMPLES``) sets the depth and
``--hypothesis-seed=N`` randomizes a deep run.  A failure is shrunk, printed with its draws and with
a spec-ready JSON case to add under ``spec/cases/`` as a fixed regression, and the verdict's
``reproduce:`` line replays it.  Draws keep away from the conventions an adapter declares unsupported.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
from hypothesis import assume, given, note, seed
from hypothesis import strategies as st

import spec
from report import CHAPTER_VERBS
from spec import general, oracle
from tests import support

#: Sides drawn from a small set: JAX and TensorFlow compile per shape.  11 is past a 10-wide tile.
SIDES = (3, 4, 5, 7, 8, 11)


@st.composite
def geometries(draw, *, groups: tuple = (1, 1, 2, 3), modes: bool = True, words: tuple = (),
               gaps: frozenset = frozenset()) -> tuple[tuple, tuple, dict]:
    """(X shape, K shape, parameters) of a valid general convolution that needs none of ``gaps``
    (the conventions the adapter declares unsupported); ``groups`` and ``words`` (only these padding
    words) narrow the draw for a property about them, rather than reject the draws it cannot use."""
    g = draw(st.sampled_from(groups), label="groups")
    cg = draw(st.integers(1, 2), label="C_in per group")
    per = draw(st.integers(1, 2), label="C_out per group")
    n = draw(st.integers(1, 3), label="N")
    h, w = draw(st.sampled_from(SIDES), label="H"), draw(st.sampled_from(SIDES), label="W")
    kh, kw = draw(st.integers(1, 3), label="kh"), draw(st.integers(1, 3), label="kw")
    stride = (draw(st.integers(1, 3), label="stride h"), draw(st.integers(1, 3), label="stride w"))
    dilation = (draw(st.integers(1, 2), label="dilation h"), draw(st.integers(1, 2), label="dilation w"))
    pads = st.tuples(st.integers(0, 2), st.integers(0, 2))
    padding = draw(st.sampled_from(words) if words else
                   st.one_of(st.sampled_from(("valid", "same", "same_lower")), st.tuples(pads, pads)), label="padding")
    mode = draw(st.sampled_from(general.PADDING_MODES if modes else ("zeros",)), label="padding mode")
    params = {"stride": stride, "dilation": dilation, "padding": padding, "padding_mode": mode, "groups": g}
    x_shape, k_shape = (n, cg * g, h, w), (per * g, cg, kh, kw)
    try:
        general.check(x_shape, k_shape, **params)
    except general.ConvError:
        assume(False)
    assume(not general.conventions_of(x_shape, k_shape, params) & gaps)
    return x_shape, k_shape, params


def _used(x_shape, k_shape, params, transpose: bool = False) -> set:
    used = general.conventions_of(x_shape, k_shape, params)
    if transpose:
        used |= {"transpose"} | {name for name, on in (("transpose_stride", tuple(params["stride"]) != (1, 1)),
                                                       ("transpose_dilation", tuple(params["dilation"]) != (1, 1)))
                                 if on}
    return used


def gaps(target) -> frozenset:
    """The conventions the adapter declares unsupported: generated cases keep away from them."""
    declared = getattr(target.backend, "conventions", None) or {}
    return frozenset(c for c, w in declared.items() if isinstance(w, str) and w.lower().startswith("unsupported"))


def keep_away(target, used: set) -> None:
    """Reject a draw that needs a convention the adapter declares unsupported, or a combination it lists
    as known to be wrong (``known_wrong``: shown by a fixed case and its known-deviation entry)."""
    assume(not used & gaps(target))
    assume(not any(combo <= used for combo, _ in getattr(target.backend, "known_wrong", ())))


def integers(draw, shape, label, bound=3) -> np.ndarray:
    """Integers in [-bound, bound] from a drawn seed: Hypothesis shrinks the geometry and the seed (one
    draw, not one per element, which keeps shrinking fast); the printed spec case holds the values."""
    seed = draw(st.integers(0, 2**32 - 1), label=f"{label} (seed)")
    return np.random.default_rng(seed).integers(-bound, bound + 1, shape).astype(np.float64)


def halves_to_ones(draw, shape, label) -> np.ndarray:
    """float32 values with magnitudes in [0.5, 1] and random signs, from a drawn seed."""
    seed = draw(st.integers(0, 2**32 - 1), label=f"{label} (seed)")
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.5, 1.0, shape) * rng.choice((-1.0, 1.0), shape)
    return values.astype(np.float32).astype(np.float64)


class Later:
    """A note written only if Hypothesis shows it (the failing example's last run): the spec case's exact
    oracle is not computed for every draw that passes."""

    def __init__(self, text):
        self.text = text

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, p, cycle) -> None:  # Hypothesis's pretty(): the text itself, unquoted
        p.text(self.text())


def spec_case(X, K, params, dY=None) -> str:
    """The failing draw as a spec case (spec/build.py's ``general`` writes the expected values)."""
    kw = {k: (list(map(list, v)) if k == "padding" and not isinstance(v, str) else
              (list(v) if isinstance(v, tuple) else v)) for k, v in params.items()}
    case = {"id": "generated_regression", "kind": "general", "source": "a generated case (tests/test_generated.py)",
            "description": "<what it shows>", "conventions": [c for c in general.CONVENTIONS
                                                              if c in general.conventions_of(X.shape, K.shape, params)],
            "inputs": {"X": X.tolist(), "K": K.tolist()},
            "params": kw, "expected": general.conv(X, K, **params).tolist(),
            "tolerance": {"rule": "exact", "why": "integer data whose partial sums the dtype holds exactly"}}
    if dY is not None:
        case["inputs"]["dY"] = dY.tolist()
    return json.dumps(case)


def _draw_case(data, target, **kw):
    x_shape, k_shape, params = data.draw(geometries(gaps=gaps(target), **kw), label="geometry")
    keep_away(target, _used(x_shape, k_shape, params))
    X = integers(data.draw, x_shape, "X")
    K = integers(data.draw, k_shape, "K")
    note(Later(lambda: "as a spec case (add under spec/cases/ as a fixed regression):\n" + spec_case(X, K, params)))
    return X, K, params


def _conforms(target, actual, X, K, params, what):
    exp = spec.general_arrays(X, K, None, params, target.dtype, target.arithmetic)
    hyp = _mistakes(exp, params)
    support._general_shape(target, actual, exp.expected["y"], hyp, what, exp.X, exp.K, params)
    support.assert_conforms(target, actual, exp.expected["y"], tolerance=exp.tolerance["y"], what=what,
                            hypotheses=hyp)
    return exp


def _keep_for_the_report(kind: str, X, K, params, actual, target) -> None:
    """A conforming output of a generated case, for the cross-framework comparison, with the draw that
    made it (X, K and the parameters as JSON bytes): keyed by a digest of that draw (``report.draw_digest``),
    so that the report pairs the same draw across backends (a backend whose declared gaps reject a draw
    has no output for it) and recomputes each target's tolerance from the draw itself."""
    from report import draw_digest, draw_params

    digest = draw_digest(X, K, params)
    got = np.asarray(target.backend.to_numpy(actual), dtype=np.float64)
    key = f"output:generated-{kind}-{digest}"
    support.note(**{key: got, f"{key}-X": X, f"{key}-K": K, f"{key}-params": draw_params(params)})


def _mistakes(exp, params) -> support.Hypotheses:
    """The named mistakes of a general convolution on these arrays, computed only if the check fails."""
    return functools.partial(support.general_hypotheses, exp.X.astype(float), exp.K.astype(float), params,
                             exp.expected["y"])


def _run(target, X, K, params, **change):
    Xn, Kn = support.native(target, "conv_general", X, K)
    return support.call(target.backend, "conv_general", Xn, Kn, **{**params, **change})


def fixed(n: int):
    """Each property's own seed: the same draws for every backend and every run, and unmoved by an edit of
    the test's code (Hypothesis's derandomized seed is a digest of the code); ``--hypothesis-seed=N``
    draws from N instead."""
    return (lambda test: test) if support.GENERATED_SEEDED else seed(n)


@fixed(20261201)
@given(data=st.data())
def test_generated_conv_matches_the_oracle(target, data):
    """Any valid geometry, any padding mode: the exact result, and the output-shape law."""
    X, K, params = _draw_case(data, target)
    actual = _run(target, X, K, params)
    _conforms(target, actual, X, K, params, f"conv_general on a generated case ({target.id})")
    _keep_for_the_report("integers", X, K, params, actual, target)


@fixed(20261202)
@given(data=st.data())
def test_generated_same_is_its_explicit_padding(target, data):
    """'same' and 'same_lower' equal their explicit pads (TF's rule), and zero pre-padding then 'valid'."""
    X, K, params = _draw_case(data, target, modes=False, words=("same", "same_lower"))
    pads, _ = general.check(X.shape, K.shape, **params)
    word = _run(target, X, K, params)
    what = f"conv_general, '{params['padding']}' against the explicit pads {pads} ({target.id})"
    _conforms(target, _run(target, X, K, params, padding=pads), X, K, params, what)
    _conforms(target, word, X, K, params, f"conv_general '{params['padding']}' ({target.id})")
    padded = np.pad(X, ((0, 0), (0, 0), *pads))
    _conforms(target, _run(target, padded, K, params, padding="valid"), X, K, params,
              f"conv_general 'valid' on the zero-padded input ({target.id})")


@fixed(20261203)
@given(data=st.data())
def test_generated_groups_are_concatenated_convolutions(target, data):
    """A grouped convolution is the concatenation of its groups' convolutions."""
    X, K, params = _draw_case(data, target, groups=(2, 3))
    g = params["groups"]
    bk = target.backend
    cg, per = X.shape[1] // g, K.shape[0] // g
    whole = support.read_result(target, _run(target, X, K, params), what="conv_general, grouped")
    for i in range(g):
        part = _run(target, X[:, i * cg:(i + 1) * cg], K[i * per:(i + 1) * per], params, groups=1)
        got = np.asarray(bk.to_numpy(part), dtype=np.float64)
        support.check(got.shape == whole[:, i * per:(i + 1) * per].shape and np.array_equal(
            got, whole[:, i * per:(i + 1) * per]), f"group {i} of {g}: the grouped convolution's output channels "
                      f"{i * per}..{(i + 1) * per - 1} differ from the convolution of that group alone ({target.id})")


@fixed(20261204)
@given(data=st.data())
def test_generated_conv_is_linear(target, data):
    """conv(X1 + X2) = conv(X1) + conv(X2), exactly (integers in [-1, 1] keep every sum exact)."""
    x_shape, k_shape, params = data.draw(geometries(gaps=gaps(target)), label="geometry")
    keep_away(target, _used(x_shape, k_shape, params))
    X1, X2 = integers(data.draw, x_shape, "X1", 1), integers(data.draw, x_shape, "X2", 1)
    K = integers(data.draw, k_shape, "K")
    bk = target.backend
    one, two, both = (np.asarray(bk.to_numpy(_run(target, a, K, params)), dtype=np.float64) for a in (X1, X2, X1 + X2))
    support.check(np.array_equal(one + two, both), f"conv_general is not linear in X ({target.id}): conv(X1 + X2) "
                  f"differs from conv(X1) + conv(X2) by up to {np.abs(one + two - both).max():.3g}")


@fixed(20261205)
@given(data=st.data())
def test_generated_transpose_is_the_input_gradient(target, data):
    """The transposed convolution of dY, cropped by the pads, is the convolution's input gradient: the
    adapter's two verbs against each other and against the oracle."""
    x_shape, k_shape, params = data.draw(geometries(groups=(1,), modes=False, gaps=gaps(target)), label="geometry")
    keep_away(target, _used(x_shape, k_shape, params, transpose=True))
    X, K = integers(data.draw, x_shape, "X"), integers(data.draw, k_shape, "K")
    _, y_shape = general.check(x_shape, k_shape, **params)
    dY = integers(data.draw, y_shape, "dY", 1)
    note(Later(lambda: f"as a spec case:\n{spec_case(X, K, params, dY)}"))
    pads, rest = general.adjoint_crops(x_shape, k_shape, params)
    exp = spec.general_arrays(X, K, dY, params, target.dtype, target.arithmetic)
    Yn, Kn = support.native(target, "conv_transpose", dY, K)
    actual = support.call(target.backend, "conv_transpose", Yn, Kn, stride=params["stride"],
                          dilation=params["dilation"], padding=pads, output_padding=rest)
    support.assert_conforms(target, actual, exp.expected["dX"], tolerance=exp.tolerance["dX"],
                            what=f"conv_transpose of dY, the adjoint of conv_general ({target.id})")


@fixed(20261206)
@given(data=st.data())
def test_generated_floats_within_the_error_bound(target, data):
    """Float inputs (0.5 <= |x| <= 1: no subnormals) within the error model's tolerance of the exact result."""
    x_shape, k_shape, params = data.draw(geometries(gaps=gaps(target)), label="geometry")
    keep_away(target, _used(x_shape, k_shape, params))
    # Magnitudes in [0.5, 1] with either sign: no subnormal input, product or (float16) result can arise
    # except by cancellation, where the bound (gamma_n times at least 0.25) dwarfs any underflow.
    X, K = halves_to_ones(data.draw, x_shape, "X"), halves_to_ones(data.draw, k_shape, "K")
    exp = spec.general_arrays(X, K, None, params, target.dtype, target.arithmetic, rule="error_bound")
    actual = _run(target, exp.X.astype(np.float64), exp.K.astype(np.float64), params)
    support._general_shape(target, actual, exp.expected["y"], _mistakes(exp, params),
                           f"conv_general on generated floats ({target.id})", exp.X, exp.K, params)
    support.assert_conforms(target, actual, exp.expected["y"], tolerance=exp.tolerance["y"],
                            what=f"conv_general on generated floats ({target.id})",
                            hypotheses=_mistakes(exp, params))
    _keep_for_the_report("floats", X, K, params, actual, target)


@st.composite
def pool_geometries(draw) -> tuple[tuple, dict]:
    """(X shape, parameters) of a valid pooling (d2l 7.5)."""
    kind = draw(st.sampled_from(general.POOL_KINDS), label="kind")
    n, c = draw(st.integers(1, 2), label="N"), draw(st.integers(1, 3), label="C")
    h, w = draw(st.sampled_from(SIDES), label="H"), draw(st.sampled_from(SIDES), label="W")
    window = (draw(st.integers(1, 3), label="window h"), draw(st.integers(1, 3), label="window w"))
    stride = (draw(st.integers(1, 3), label="stride h"), draw(st.integers(1, 3), label="stride w"))
    pads = st.tuples(st.integers(0, 1), st.integers(0, 1))
    padding = draw(st.one_of(st.sampled_from(("valid", "same")), st.tuples(pads, pads)), label="padding")
    params = {"kind": kind, "window": window, "stride": stride, "padding": padding,
              "ceil_mode": draw(st.booleans(), label="ceil_mode"),
              "count_include_pad": draw(st.booleans(), label="count_include_pad")}
    try:
        general.pool_check((n, c, h, w), **params)
    except general.ConvError:
        assume(False)
    return (n, c, h, w), params


@fixed(20261207)
@given(data=st.data())
def test_generated_pool_matches_the_oracle(target, data):
    """Any valid pooling (max or average, padding, stride, ceil sizes, padded cells counted or not) on
    integer inputs: the exact result within its bound (a maximum exactly), and the output-shape law."""
    x_shape, params = data.draw(pool_geometries(), label="geometry")
    keep_away(target, general.pool_conventions_of(params))
    X = integers(data.draw, x_shape, "X")
    exp = spec.pool_arrays(X, params, target.dtype, target.arithmetic)
    what = f"pool2d on a generated case ({target.id})"
    actual = support.call(target.backend, "pool2d", *support.native(target, "pool2d", X), **params)
    mistakes = functools.partial(support.pool_hypotheses, X, params, exp.expected["y"])
    support._general_shape(target, actual, exp.expected["y"], mistakes, what, X, None, params)
    support.assert_conforms(target, actual, exp.expected["y"], tolerance=exp.tolerance["y"], what=what,
                            hypotheses=mistakes)
    _keep_for_the_report("pool", X, np.zeros(0), params, actual, target)


#: The chapter's correlation verbs (7.2), each run on the same draw where the manifest declares it: the
#: generated cases of an adapter that gives these alone (the runners, an out-of-tree adapter).
CORRELATION_VERBS = CHAPTER_VERBS


@fixed(20261208)
@given(data=st.data())
def test_generated_corr2d_matches_the_oracle(target, data):
    """The chapter's verbs on any input and kernel shape (the kernel no larger than the input): the exact
    result (integers in [-3, 3], kernels up to 3x3: partial sums at most 81, exact in every dtype).  A verb
    whose failures on this target a known-deviation list accepts is left out here (tests/deviations.py)."""
    from tests.deviations import known_verb

    bk = target.backend
    declared = [op for op in CORRELATION_VERBS
                if (bk.verbs is None or op in bk.verbs) and bk.declares(op, target.dtype)]
    ops = [op for op in declared if known_verb(target.id, op) is None]
    if left := [op for op in declared if op not in ops]:
        support.note(left_out=f"{target.id}: the chapter-verb property leaves out {', '.join(left)}, whose failures "
                              f"the known-deviation list accepts ({known_verb(target.id, left[0]).where}); "
                              "the fixed cases carry them")
    if declared and not ops:
        entry = known_verb(target.id, declared[0])
        support.skip(f"{support.LEFT_TO_FIXED}: every chapter verb of {target.id} has known-deviation entries "
                     f"(first: {entry.where}), which the fixed cases carry")
    h, w = data.draw(st.sampled_from(SIDES), label="H"), data.draw(st.sampled_from(SIDES), label="W")
    kh, kw = data.draw(st.integers(1, min(3, h)), label="kh"), data.draw(st.integers(1, min(3, w)), label="kw")
    X, K = integers(data.draw, (h, w), "X"), integers(data.draw, (kh, kw), "K")
    note(Later(lambda: "as a spec case (add under spec/cases/ as a fixed regression):\n" + chapter_case(X, K)))
    expected, tolerance = chapter_arrays(X, K, target.dtype, target.arithmetic)
    skipped = ran = None
    for op in ops or CORRELATION_VERBS[:1]:  # none declared here: corr2d, whose call skips and says why
        try:  # without a manifest, a verb that is not implemented skips; the others still run
            actual = support.call(bk, op, *support.native(target, op, X, K))
        except pytest.skip.Exception as exc:
            skipped = exc
            continue
        ran = op
        support.assert_conforms(target, actual, expected, tolerance=tolerance,
                                what=f"{op} on a generated case ({target.id}): X {h}x{w}, K {kh}x{kw}",
                                hypotheses=functools.partial(support.correlation_hypotheses, X, K, None,
                                                             target.dtype),
                                input_shape=X.shape, kernel_shape=K.shape)
        _keep_for_the_report(op, X, K, {}, actual, target)
    if ran is None and skipped is not None:
        raise skipped


def chapter_arrays(X, K, dtype: str, arithmetic: str):
    """The chapter's correlation of 2-D X and K as the general convolution of one channel ('valid', no
    stride): the spec's expected values and tolerance (zero here: the draws are rounding-free)."""
    exp = spec.general_arrays(X[None, None], K[None, None], None, general.params_of({}), dtype, arithmetic)
    return exp.expected["y"][0, 0], exp.tolerance["y"][0, 0]


def chapter_case(X, K) -> str:
    """A draw of the chapter's verbs as a spec case (for spec/cases/cross_correlation.json)."""
    return json.dumps({"id": "generated_regression", "kind": "correlation",
                       "source": "a generated case (tests/test_generated.py)", "description": "<what it shows>",
                       "ops": list(CORRELATION_VERBS), "inputs": {"X": X.tolist(), "K": K.tolist()},
                       "expected": oracle.corr2d(X, K).tolist(),
                       "tolerance": {"rule": "exact",
                                     "why": "integer data whose partial sums the dtype holds exactly"}})


GENERATED = ("test_generated_conv_matches_the_oracle", "test_generated_same_is_its_explicit_padding",
             "test_generated_groups_are_concatenated_convolutions", "test_generated_conv_is_linear",
             "test_generated_transpose_is_the_input_gradient", "test_generated_floats_within_the_error_bound",
             "test_generated_pool_matches_the_oracle", "test_generated_corr2d_matches_the_oracle")

pytestmark = pytest.mark.generated
