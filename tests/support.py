"""The suite's one assertion helper, and what it says when a check fails.

Every comparison crosses one boundary, the adapter's ``to_numpy``, after the
result's device, dtype and shape have been checked.  A mismatch is explained in
the chapter's words where a known mistake fits it ("kernel looks flipped"),
not only as "arrays differ".
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import spec
from backends.base import Backend
from report import KNOWN_DEVIATION  # noqa: F401  (the reason prefix of spec/xfails entries; tests/deviations.py)
from spec import numerics, oracle

NOT_IMPLEMENTED = "not implemented by the adapter"

#: Reasons of the skips the harness itself decides (``skip``, ``skip_mark``): a
#: skip with any other reason -- an adapter calling ``pytest.skip()`` -- is
#: turned into a failure (``tests/records.py``).
SANCTIONED: set[str] = set()


def skip(reason: str):
    """Skip the running test for a documented reason (the only way the harness skips)."""
    __tracebackhide__ = True
    SANCTIONED.add(reason)
    pytest.skip(reason)


def skip_mark(reason: str) -> pytest.MarkDecorator:
    """A skip mark for a documented reason."""
    SANCTIONED.add(reason)
    return pytest.mark.skip(reason=reason)


#: The running test's notes (set by ``tests/records.py``): measurements and
#: outputs that go into the results record.
NOTES: contextvars.ContextVar[dict | None] = contextvars.ContextVar("notes", default=None)


def note(**fields) -> None:
    notes = NOTES.get()
    if notes is not None:
        for key, value in fields.items():
            if key in ("max_abs_error", "max_tolerance_units") and key in notes:
                value = max(value, notes[key])  # a test with several checks keeps the worst
            notes[key] = value


@dataclass(frozen=True)
class Measure:
    """How close a checked result came: max |error| and max |error| / tolerance."""

    max_abs_error: float
    max_tolerance_units: float


def _units(err: np.ndarray, tol: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(err == 0, 0.0, err / tol)
    return float(np.max(ratio, initial=0.0))


def settings_changed(before: dict, after: dict) -> dict:
    """``{name: (before, after)}`` for every setting of ``before`` that ``after`` reads differently."""
    return {k: (v, after.get(k)) for k, v in before.items() if after.get(k) != v}


def read_result(target, actual, *, what: str) -> np.ndarray:
    """Check the result's kind, device and dtype; return its values as float64."""
    __tracebackhide__ = True
    bk = target.backend
    try:
        device, dtype = bk.device_of(actual), bk.dtype_of(actual)
        values = np.asarray(bk.to_numpy(actual))
    except Exception as exc:  # the adapter handed back something it cannot read
        # Asynchronous frameworks (MXNet) raise an operator's own error here, traceback first: its last line.
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        said = lines[-1] if lines and lines[0].startswith("Traceback") else str(exc)
        pytest.fail(
            f"{what}: the adapter returned {type(actual).__name__}, which it cannot read back as an array "
            f"({type(exc).__name__}: {said})", pytrace=False)
    if device != target.device:
        pytest.fail(f"{what}: the result lives on {device}, but {target.device} was asked for", pytrace=False)
    if dtype != target.dtype:
        pytest.fail(f"{what}: the result is {dtype}, but the inputs were {target.dtype} "
                    "(a silent up- or down-cast)", pytrace=False)
    values = values.astype(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():  # every value the suite reads, from every verb: NaN compares False with any bound
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        pytest.fail(f"{what}: {int(bad.sum())} value(s) are NaN or inf, first at {where}", pytrace=False)
    return values


def check(condition: bool, message: str) -> None:
    """Fail with ``message`` unless ``condition``: a check that survives ``python -O`` and
    ``--assert=plain`` (a bare ``assert`` does not)."""
    __tracebackhide__ = True
    if not condition:
        pytest.fail(message, pytrace=False)


#: Named mistakes and the outputs they predict, or a function that computes them: most checks pass,
#: and the predictions (exact oracle runs) are needed only to explain a failure.
Hypotheses = dict[str, np.ndarray] | Callable[[], dict[str, np.ndarray]] | None


def resolve(hypotheses: Hypotheses) -> dict[str, np.ndarray]:
    """The map of a :data:`Hypotheses`, computed now if it is a function."""
    return dict((hypotheses() if callable(hypotheses) else hypotheses) or {})


def assert_conforms(target, actual, expected: np.ndarray, *, tolerance: np.ndarray | float, what: str,
                    hypotheses: Hypotheses = None, input_shape: tuple | None = None,
                    kernel_shape: tuple | None = None) -> Measure:
    """Assert that a native result equals ``expected`` within ``tolerance``.

    Checks, in order: that the adapter can read the result back, its device,
    its dtype, that every value is finite, its shape, then each value against
    its elementwise tolerance.  ``hypotheses`` maps a named mistake to the
    output that mistake would produce (or is a function that returns that map,
    called only on a mismatch); a mismatch that fits one says so.
    """
    __tracebackhide__ = True
    got = read_result(target, actual, what=what)
    expected = np.asarray(expected, dtype=np.float64)
    tolerance = np.broadcast_to(np.asarray(tolerance, dtype=np.float64), expected.shape)
    if got.shape != expected.shape:
        hint = f" for a {_fmt(input_shape)} input and a {_fmt(kernel_shape)} kernel" if input_shape else ""
        pytest.fail(f"{what}: output shape {_fmt(got.shape)}, expected {_fmt(expected.shape)}{hint}"
                    f"{describe_shape(got.shape, expected.shape, input_shape, kernel_shape)}", pytrace=False)
    err = np.abs(got - expected)
    measure = Measure(float(np.max(err, initial=0.0)), _units(err, tolerance))
    note(max_abs_error=measure.max_abs_error, max_tolerance_units=measure.max_tolerance_units)
    outside = ~(err <= tolerance)  # NaN-safe: NaN is outside every bound
    if outside.any():
        worst = np.unravel_index(np.argmax(np.where(outside, err - tolerance, -np.inf)), err.shape)
        worst = tuple(int(i) for i in worst)
        # A mistake fits when the output equals its prediction as rounded to the target's dtype.
        fitting = [name for name, alt in resolve(hypotheses).items()
                   if alt.shape == got.shape and np.all(np.abs(got - alt) <= tolerance + np.abs(
                       numerics.round_to(alt, target.dtype) - alt))]
        verdict = fits(fitting)
        pytest.fail(
            f"{what}: {int(outside.sum())} of {got.size} values outside tolerance{verdict}\n"
            f"  worst at {worst}: got {got[worst]!r}, expected {expected[worst]!r}, "
            f"|error| {err[worst]:.3g} > tolerance {tolerance[worst]:.3g}\n"
            f"  got:\n{_indent(got)}\n  expected:\n{_indent(expected)}", pytrace=False)
    return measure


def describe_shape(got: tuple, expected: tuple, input_shape: tuple | None = None,
                   kernel_shape: tuple | None = None) -> str:
    """Describe a wrong 'VALID' output shape, and name *every* usual mistake that predicts it
    (where several fit, these inputs cannot tell them apart, and the message says so)."""
    if len(got) != 2:
        return f": a {len(got)}-D result, the batch or channel axes were not removed"
    (gh, gw), (eh, ew) = got, expected
    if gh * gw == 0:
        return ": an empty array where a value (or an error) was due"
    words = [f"{abs(n)} {name}{'s' if abs(n) > 1 else ''} {'short' if n < 0 else 'too many'}"
             for n, name in ((gh - eh, "row"), (gw - ew, "column")) if n]
    return ": " + ", ".join(words) + fits(shape_hypotheses(got, expected, input_shape, kernel_shape))


def shape_hypotheses(got, expected, input_shape=None, kernel_shape=None) -> list[str]:
    """The usual shape mistakes whose predicted output shape is ``got``."""
    got, (eh, ew) = tuple(got), expected
    predicted = [("(eh, ew)", "")]  # placeholder, dropped below
    predicted = []
    if input_shape is not None:
        predicted.append((tuple(input_shape), "'SAME' padding where 'VALID' is meant"))
    if input_shape is not None and kernel_shape is not None:
        (nh, nw), (kh, kw) = tuple(input_shape), tuple(kernel_shape)
        if kh != kw:
            for side in dict.fromkeys((kh, kw)):
                predicted.append(((nh - side + 1, nw - side + 1),
                                  f"the {kh}x{kw} kernel handled as {side}x{side} (a non-square kernel handled as "
                                  "square)"))
            predicted.append(((nh - kw + 1, nw - kh + 1), "kernel height and width swapped"))
    if eh != ew:
        predicted.append(((ew, eh), "output transposed (an NHWC/NCHW layout mix-up)"))
    predicted += [((eh - 1, ew), "an off-by-one in the output height (nh-kh where nh-kh+1 is meant)"),
                  ((eh, ew - 1), "an off-by-one in the output width (nw-kw where nw-kw+1 is meant)"),
                  ((eh - 1, ew - 1), "an off-by-one in both output sizes (n-k where n-k+1 is meant)")]
    return list(dict.fromkeys(name for shape, name in predicted if shape == got))


def fits(names: list[str]) -> str:
    """``; <the one mistake that fits>`` or ``; fits each of: a; b (...)``, or nothing."""
    if not names:
        return ""
    if len(names) == 1:
        return f"; {names[0]}"
    return f"; fits each of: {'; '.join(names)} (these inputs cannot tell them apart)"


def correlation_hypotheses(X: np.ndarray, K: np.ndarray, b: float | None, dtype: str) -> dict[str, np.ndarray]:
    """The outputs that common mistakes would produce on these inputs."""
    bias = b or 0.0
    hyp = {"kernel looks flipped: this is convolution, not cross-correlation": oracle.corr2d(X, K[::-1, ::-1], bias),
           "kernel looks flipped left-right (columns reversed)": oracle.corr2d(X, K[:, ::-1], bias),
           "kernel looks flipped upside-down (rows reversed)": oracle.corr2d(X, K[::-1, :], bias)}
    if K.shape[0] == K.shape[1]:
        hyp["kernel looks transposed (K.T used for K)"] = oracle.corr2d(X, K.T, bias)
    if b:
        hyp["the bias looks ignored"] = oracle.corr2d(X, K)
        hyp["the bias looks added twice"] = oracle.corr2d(X, K, 2 * bias)
    right = oracle.corr2d(X, K, bias)
    if right.shape[0] == right.shape[1]:  # a non-square one is told by its shape (assert_conforms)
        hyp["output transposed (an NHWC/NCHW layout mix-up)"] = right.T
    return {name: alt for name, alt in hyp.items() if not np.array_equal(alt, right)}


def precision_verdict(got: np.ndarray, expected: np.ndarray, X, K, b, arithmetic: str) -> str:
    """If a narrower format's rounding could have produced these values, say which.

    Only when it could: the values are what that computation gives (the inputs
    rounded to it, the result within its error bound of the exact result on
    those inputs) and, where the result itself is rounded to it (float16,
    bfloat16, float32), every value is representable in it.  A constant offset
    or a missing bias on integer data is not rounding, and is not called so.
    TF32 keeps float32 results but rounds the inputs to 11 bits.
    """
    narrower = {"float64": ("float32", "float16"), "float32": ("tfloat32", "float16", "bfloat16")}.get(arithmetic, ())
    bias = b or 0.0
    n = K.size + 2 + (b is not None)
    if got.shape != expected.shape or np.array_equal(got, expected):
        return ""
    found = []
    for other in narrower:
        Xr, Kr = numerics.round_to(X, other), numerics.round_to(K, other)
        magnitude = oracle.abs_corr2d(Xr, Kr, abs(bias))
        if other != "tfloat32" and numerics.rounding_free(magnitude, Xr, Kr, bias, other):
            continue  # that format computes these inputs exactly: its rounding cannot be the error
        exact_on_rounded = oracle.corr2d(Xr, Kr, bias)
        if other == "tfloat32":  # 11-bit inputs, exact products, float32 sums and result
            tol = numerics.gamma(n, "float32") * oracle.abs_corr2d(Xr, Kr, abs(bias))
            representable = True
        else:
            tol = numerics.gamma(n, other) * oracle.abs_corr2d(Xr, Kr, abs(bias))
            representable = np.array_equal(numerics.round_to(got, other), got)
        if representable and np.all(np.abs(got - exact_on_rounded) <= tol):
            found.append(other)
    words = {"tfloat32": "values agree only to 11-bit precision: float32 computed in TF32 (reduced-precision math "
                         "left on in strict mode?)"}
    named = [words.get(o, f"values agree only to {o} precision: {arithmetic} computed in {o}?") for o in found]
    if len(named) > 1:
        return "several narrower formats fit (these inputs cannot tell them apart): " + "; or ".join(named)
    return named[0] if named else ""


def check_correlation(target, case: spec.Case, op: str) -> Measure:
    """Run one verb of a correlation case on the target and check it."""
    __tracebackhide__ = True
    exp = spec.expectation(case, target.dtype, target.arithmetic)
    bk = target.backend
    X, K = target.asarray(exp.X), target.asarray(exp.K)
    args = (X, K) if op != "conv2d_layer" else (X, K, target.asarray(exp.b))
    actual = call(bk, op, *args)
    if "seed" in case.data:  # seeded random values: kept for the cross-framework comparison
        try:
            note(output=np.asarray(bk.to_numpy(actual), dtype=np.float64))
        except Exception:
            pass  # unreadable results fail in assert_conforms below, with the reason
    Xv, Kv = exp.X.astype(np.float64), exp.K.astype(np.float64)
    b = None if exp.b is None else float(exp.b[0])
    hyp = functools.partial(correlation_hypotheses, Xv, Kv, b, target.dtype)
    what = f"{op} on {case.id} ({target.id})"
    try:
        return assert_conforms(target, actual, exp.expected, tolerance=exp.tolerance, what=what, hypotheses=hyp,
                               input_shape=Xv.shape, kernel_shape=Kv.shape)
    except pytest.fail.Exception as failure:
        try:
            got = np.asarray(bk.to_numpy(actual), dtype=np.float64)
        except Exception:
            raise failure from None
        verdict = precision_verdict(got, exp.expected, Xv, Kv, b, target.arithmetic)
        if verdict:  # a wrong value's diagnosis goes on the first line, which cause lines and records keep;
            first, _, rest = failure.msg.partition("\n")  # any other failure (a dtype, a shape) is its own cause
            if "outside tolerance" in first:
                pytest.fail(f"{first}; {verdict}\n{rest}", pytrace=False)
            pytest.fail(f"{failure.msg}\n  {verdict}", pytrace=False)
        raise


def case_params(pairs) -> list:
    """``pytest.param`` per ``(case, op)``, with ids like ``fig_7_2_1-conv2d``."""
    return [pytest.param(case, op, id=f"{case.id}-{op}") for case, op in pairs]


#: The target (or probe) of the running test, set by the ``_numerics`` fixture: ``call`` holds each
#: verb to the manifest's ``verb_dtypes`` for the target's dtype.
TARGET: contextvars.ContextVar = contextvars.ContextVar("conv_conformance_target")
#: How a skip that the manifest asks for (``verb_dtypes``) begins.
MANIFEST_SAYS = "not in the manifest"

#: Set from ``--hypothesis-seed`` (``conftest.py``, before the test modules are imported): the generated
#: properties then draw from that seed instead of their own fixed ones.
GENERATED_SEEDED = False

#: Set from pytest's ``-v`` (``conftest.py``): show a verb's own traceback instead of one line.
FULL_TRACEBACKS = False


def contract_of(bk) -> int:
    """The contract version an adapter targets: the one it declares, or 1 when it declares none."""
    return getattr(bk, "contract", None) or 1


def contract_warning(bk) -> str | None:
    """What an adapter written for an older contract is not asked, for its author (``None``: current)."""
    from backends.base import CONTRACT, CONTRACTS

    have = contract_of(bk)
    if have >= CONTRACT:
        return None
    new = [v for v in CONTRACTS[CONTRACT] if v not in CONTRACTS[have]]
    said = f"declares contract = {have}" if getattr(bk, "contract", None) else "declares no contract (read as 1)"
    return (f"{bk.label} {said}; the suite's contract is {CONTRACT}, which adds {', '.join(new)}: these are not "
            f"asked of it (skipped as not implemented); set contract = {CONTRACT} once it implements or declares "
            "them (docs/adapters.md)")


def after_contract(bk, verb: str) -> int | None:
    """The contract version that added ``verb``, when that is later than the one the adapter targets."""
    from backends.base import CONTRACTS

    if verb in CONTRACTS[contract_of(bk)]:
        return None
    return min((n for n, verbs in CONTRACTS.items() if verb in verbs), default=None)


def call(bk, verb: str, *args, expect_error: bool = False, gap: bool = False, **kwargs):
    """Call an adapter verb, holding it to the adapter's manifest (``verbs``).

    Not implemented and not declared (or no manifest at all): a skip that says
    "not implemented by the adapter".  Declared but not implemented: a failure.
    Not declared but implemented: the check runs, and if it passes the verdict
    reports an unexpected pass, so the manifest cannot rot.  Any other
    exception is one line naming the verb (the framework's traceback with
    ``-v``), unless ``expect_error``: then the caller judges it.  With ``gap`` (a convention the
    adapter declares unsupported), every exception, ``NotImplementedError`` too, goes to the caller.
    """
    __tracebackhide__ = True
    if (added := after_contract(bk, verb)) is not None:
        skip(f"{NOT_IMPLEMENTED}: {bk.label}.{verb}: added in contract {added}, and the adapter targets contract "
             f"{contract_of(bk)} (backends.base.CONTRACTS)")
    target = TARGET.get(None)
    if target is not None and target.backend is bk and not bk.declares(verb, target.dtype) \
            and getattr(target, "op", None) != verb:  # a probe of that very verb calls it
        held = bk.verb_dtypes[verb]
        skip(f"{MANIFEST_SAYS}: {bk.label}.{verb} is declared in " + (f"{', '.join(held)} only" if held else "no dtype")
             + f" (verb_dtypes), not {target.dtype}")
    declared = bk.verbs is None or verb in bk.verbs
    inputs = _inputs(bk, verb, args, kwargs)
    try:
        result = getattr(bk, verb)(*args, **kwargs)
    except NotImplementedError as exc:
        if gap:
            raise
        why = f": {exc}" if str(exc) else ""
        if bk.verbs is not None and declared:
            pytest.fail(f"{bk.label}.{verb} is declared in the adapter's manifest (verbs) but raises "
                        f"NotImplementedError{why}", pytrace=False)
        manifest = " (the manifest agrees)" if bk.verbs is not None else ""
        skip(f"{NOT_IMPLEMENTED}: {bk.label}.{verb}{why}{manifest}")
    except Exception as exc:
        if expect_error or FULL_TRACEBACKS:
            raise
        first = _what_went_wrong(exc)[:500]
        pytest.fail(f"{bk.label}.{verb} raised {type(exc).__name__}: {first} (the framework's traceback: run the "
                    "reproduce line with -v)", pytrace=False)
    if not declared:  # it returned: if the test then passes, the verdict reports an unexpected pass
        note(undeclared_verb=verb)
    for name, arg, before in inputs:  # every input of every verb is read back
        try:
            after = np.array(bk.to_numpy(arg))
        except Exception as exc:
            pytest.fail(f"{verb}: its input {name} cannot be read back after the call ({type(exc).__name__}: "
                        f"{exc})", pytrace=False)
        if after.shape != before.shape or not np.array_equal(after, before, equal_nan=True):
            pytest.fail(f"{verb}: modified its input {name} in place", pytrace=False)
    return result


def _what_went_wrong(exc: Exception) -> str:
    """The line of an exception's message that says what went wrong: the first, or the last where the
    message starts with a traceback (MXNet's errors carry their own)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()] or [""]
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]


@functools.cache
def _signature(verb: str) -> inspect.Signature:
    """The contract's signature of a verb (``backends.base.Backend``), read once."""
    return inspect.signature(getattr(Backend, verb))


def _inputs(bk, verb: str, args: tuple, kwargs: dict) -> list[tuple[str, object, np.ndarray]]:
    """``(name, native array, copy of its values)`` for every array argument of a verb call."""
    signature = _signature(verb)
    bound = signature.bind(bk, *args, **kwargs).arguments
    items = []
    for name, value in bound.items():
        if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
            items += value.items()  # **params: their own names
        else:
            items.append((name, value))
    out = []
    for name, value in items:
        if name == "self" or value is None or isinstance(value, int | float | str | tuple):
            continue
        out.append((name, value, np.array(bk.to_numpy(value))))
    return out


def _fmt(shape) -> str:
    return "x".join(str(n) for n in shape) if shape else "scalar"


def _indent(a: np.ndarray) -> str:
    with np.printoptions(precision=8, suppress=True, linewidth=120):
        return "\n".join("    " + line for line in str(a).splitlines())


def native(target, verb: str, *arrays):
    """The verb's array inputs handed to the adapter.  For a verb its manifest leaves out, an adapter
    whose ``asarray`` does not take these (4-D, say) has nothing to run them with: a skip, as for a
    verb that raises ``NotImplementedError``.  For a declared verb that is a failure."""
    __tracebackhide__ = True
    bk = target.backend
    try:
        return tuple(target.asarray(a) for a in arrays)
    except Exception as exc:
        if bk.verbs is None or verb in bk.verbs:
            raise
        said = (str(exc).splitlines() or [""])[0][:150]
        skip(f"{NOT_IMPLEMENTED}: {bk.label}.{verb} (the manifest agrees; its asarray does not take the "
             f"{np.ndim(arrays[0])}-D inputs: {type(exc).__name__}: {said})")


# -- the general convolution (spec/general.py) ---------------------------------

#: How the skips of ``--first-failure`` begin (``conftest.py``), and the backends that failed a check in
#: this process: ``{label: the node id of its first failure}``.
STOPPED = "stopped after the backend's first failure"
FIRST_FAILURE: dict[str, str] = {}
#: How a skip for a convention the adapter declares unsupported (``conventions``) begins.
UNSUPPORTED = "unsupported, as the adapter declares"
#: How the chapter-verb property's skip begins where the known-deviation lists accept every verb it would
#: run on a target (tests/deviations.py): the list's entries are the deviations, not this skip.
LEFT_TO_FIXED = "left to the fixed cases"


def unsupported(bk, case: spec.Case) -> dict[str, str]:
    """The conventions of ``case`` that the adapter declares unsupported: ``{name: its words}``."""
    declared = getattr(bk, "conventions", {}) or {}
    return {c: declared[c] for c in case.data["conventions"]
            if isinstance(declared.get(c), str) and declared[c].lower().startswith("unsupported")}


def _call_case(target, case: spec.Case, verb: str, *arrays, **params):
    """``(result, gaps)``: ``verb`` on the case's arrays.  Where the case needs conventions the adapter
    declares unsupported (``gaps``), an exception confirms the declaration: a skip that says so."""
    __tracebackhide__ = True
    bk = target.backend
    # A verb the manifest leaves out is not implemented, whatever the case needs: that skip, not this one.
    gaps = unsupported(bk, case) if bk.verbs is None or verb in bk.verbs else {}
    native_arrays = native(target, verb, *arrays)
    try:
        return call(bk, verb, *native_arrays, **params, expect_error=bool(gaps), gap=bool(gaps)), gaps
    except Exception as exc:
        if not gaps:
            raise
        first = _what_went_wrong(exc)[:200]
        skip(f"{UNSUPPORTED}: {', '.join(f'{c} ({w})' for c, w in gaps.items())}; {bk.label}.{verb} "
             f"raised {type(exc).__name__}: {first}")


def _gaps_conform(target, what: str, gaps: dict, give: str = "it") -> None:
    """A result that conforms where the adapter declared the convention unsupported: an unexpected pass."""
    if gaps:
        note(unexpected=f"{target.id}: {what}, though the adapter declares {', '.join(gaps)} unsupported "
                        f"(conventions): say how it gives {give}")


def _check_error_case(target, case: spec.Case, verb: str, params: dict, advice: str, **arrays) -> None:
    """Invalid parameters must raise, never return a result: any clear error will do."""
    __tracebackhide__ = True
    try:
        result = call(target.backend, verb, *native(target, verb, *arrays.values()), **params, expect_error=True)
    except Exception:
        return
    try:
        shape = _fmt(np.shape(target.backend.to_numpy(result)))
    except Exception:
        shape = "(unreadable)"
    given = ", ".join(f"{name} {_fmt(a.shape)}" for name, a in arrays.items())
    pytest.fail(f"{verb} on {case.id}: {given}, {params}: the spec says this is an error ({case.data['error']}), "
                f"but the adapter returned an array of shape {shape}{advice}", pytrace=False)


def general_hypotheses(X, K, params: dict, expected: np.ndarray) -> dict[str, np.ndarray]:
    """The outputs that the usual mistakes of a general convolution would produce on these inputs:
    the extra pixel at the wrong end, ``k//2`` padding under a stride, F.pad's width-first order,
    begin and end swapped, a padding mode for another, dilation ignored, a reshape for a transpose of
    the kernel (OIHW read as HWIO), height and width swapped, the depthwise channel order, a flip."""
    from spec import general

    cout, cg, kh, kw = K.shape
    pad = params["padding"]
    alts: list[tuple[str, dict, np.ndarray]] = []
    if pad in ("same", "same_lower"):
        other = "same_lower" if pad == "same" else "same"
        alts.append((f"the extra pixel at the wrong end ('{other}' where '{pad}' is meant)",
                     {"padding": other}, K))
        alts.append((f"k//2 padding at both ends where '{pad}' is meant (wrong under a stride or an even kernel)",
                     {"padding": ((kh // 2, kh // 2), (kw // 2, kw // 2))}, K))
    elif not isinstance(pad, str):
        (t, b), (le, r) = pad
        alts.append(("the pads read width first (torch F.pad's order: left, right, top, bottom)",
                     {"padding": ((le, r), (t, b))}, K))
        alts.append(("the pads' begin and end swapped", {"padding": ((b, t), (r, le))}, K))
    mode = params["padding_mode"]
    for other in general.PADDING_MODES:
        if other != mode and not (mode == "zeros" or pad == "valid"):
            alts.append((f"{other} padding where {mode} is meant", {"padding_mode": other}, K))
    if tuple(params["dilation"]) != (1, 1):
        alts.append(("the dilation ignored", {"dilation": (1, 1)}, K))
    if cg * cout > 1 or kh != kw:
        alts.append(("the kernel reshaped where it should be transposed (OIHW read as HWIO)", {},
                     K.reshape(kh, kw, cg, cout).transpose(3, 2, 0, 1)))
    alts.append(("kernel height and width swapped (K transposed)", {}, K.transpose(0, 1, 3, 2)))
    alts.append(("kernel looks flipped: this is convolution, not cross-correlation", {}, K[:, :, ::-1, ::-1]))
    found = {}
    for name, change, kernel in alts:
        try:
            found[name] = general.conv(X, kernel, **{**params, **change})
        except general.ConvError:
            continue
    groups, cin = params["groups"], X.shape[1]
    per = cout // groups
    if groups > 1 and per > 1:  # group g's j-th output channel is g*m + j; interleaved, it lands at j*G + g
        wrong = np.empty_like(expected)
        for g in range(groups):
            for j in range(per):
                wrong[:, j * groups + g] = expected[:, g * per + j]
        found["the depthwise output channels ordered j*C + c instead of c*m + j (group channel order interleaved: "
              "output channels ordered j*G + g instead of g*m + j)" if groups == cin else
              "the grouped output channels interleaved: output channels ordered j*G + g instead of g*m + j"] = wrong
    return {name: alt for name, alt in found.items() if not (alt.shape == expected.shape
                                                             and np.array_equal(alt, expected))}


def expecting(actual, expected: np.ndarray, what: str) -> None:
    """The harness announces the shape (and values) it expects of a result before it checks the shape:
    nothing here; ``conv-conformance repro`` listens (conv_conformance/repro.py)."""


def _general_shape(target, actual, expected: np.ndarray, hyp: Hypotheses, what: str, X, K, params) -> np.ndarray:
    """The result's values; a wrong output shape fails, named by every mistake that predicts it (``K``
    None: an operation without a kernel)."""
    __tracebackhide__ = True
    expecting(actual, expected, what)
    got = read_result(target, actual, what=what)
    if got.shape != expected.shape:
        named = [name for name, alt in resolve(hyp).items() if alt.shape == got.shape]
        kernel = "" if K is None else f", K {_fmt(K.shape)}"
        pytest.fail(f"{what}: output shape {_fmt(got.shape)}, expected {_fmt(expected.shape)} for X {_fmt(X.shape)}"
                    f"{kernel} and {params}{fits(named)}", pytrace=False)
    return got


def check_general(target, case: spec.Case) -> None:
    """``conv_general`` on a case: the output (its device, dtype, shape and values), with the
    mistakes that fit named; a convention the adapter declares unsupported may raise (a skip that
    says so), and conforming then is an unexpected pass."""
    __tracebackhide__ = True
    exp = spec.general_expectation(case, target.dtype, target.arithmetic)
    bk = target.backend
    what = f"conv_general on {case.id} ({target.id})"
    actual, gaps = _call_case(target, case, "conv_general", exp.X, exp.K, **exp.params)
    Xv, Kv = exp.X.astype(np.float64), exp.K.astype(np.float64)
    expected = exp.expected["y"]
    extra = {}  # the subnormal cases' own mistake, known before the comparison
    hyp = lambda: {**_layout_hypotheses(exp, Xv, Kv, expected), **extra}  # noqa: E731
    tolerance = exp.tolerance["y"]
    if "subnormals" in case.data["conventions"]:
        flush = spec.general.flushed(spec.general.conv(spec.general.flushed(Xv, target.dtype),
                                                       spec.general.flushed(Kv, target.dtype), **exp.params),
                                     target.dtype)
        if target.dtype in (getattr(bk, "flushes_subnormals", None) or {}).get(target.device, ()):
            # Declared: the flushed values are expected, exactly (a framework that keeps them after all
            # conforms too, and is told its declaration is wrong).
            got = read_result(target, actual, what=what)
            if got.shape == expected.shape and np.array_equal(got, expected) and not np.array_equal(flush, expected):
                note(unexpected=f"{target.id}: {case.id} keeps subnormals, though the adapter declares them "
                                "flushed in this dtype (flushes_subnormals)")
            expected, tolerance = (expected, tolerance) if np.array_equal(got, expected) else (flush, 0.0)
        elif not np.array_equal(flush, expected):
            extra["subnormals flushed to zero (FTZ/DAZ): if the framework does so, declare it in "
                  "flushes_subnormals"] = flush
    _general_shape(target, actual, expected, hyp, what, Xv, Kv, exp.params)
    if "subnormals" not in case.data["conventions"]:  # flushed and kept differ by declaration: not compared
        note(**{"output:conv_general": np.asarray(bk.to_numpy(actual), dtype=np.float64)})
    assert_conforms(target, actual, expected, tolerance=tolerance, what=what, hypotheses=hyp)
    _gaps_conform(target, f"{case.id} conforms", gaps)


def _layout_hypotheses(exp, Xv, Kv, expected) -> dict[str, np.ndarray]:
    """:func:`general_hypotheses` on the logical arrays, given back in the case's layout, and for a
    channels-last case the layout's own mistakes: the result left channels-first, the kernel read as
    OIHW or as HWOI."""
    general = spec.general
    layout = exp.params.get("layout", "nchw")
    if layout == "nchw":
        return general_hypotheses(Xv, Kv, exp.params, expected)
    back = {role: tuple(np.argsort(axes)) for role, axes in general.TO_NHWC.items()}
    X, K, y = Xv.transpose(back["X"]), Kv.transpose(back["K"]), expected.transpose(back["y"])
    params = general.logical(exp.params)
    hyp = {name: general.to_layout(alt, "y", layout)
           for name, alt in general_hypotheses(X, K, params, y).items()}
    hyp["the result left channels-first (NCHW) where channels-last (NHWC) is meant"] = y
    cout, cg, kh, kw = K.shape
    for name, misread in (("the kernel read as OIHW where HWIO is given", Kv.reshape(K.shape)),
                          ("the kernel read as HWOI where HWIO is given (its in and out channels swapped)",
                           Kv.reshape(kh, kw, cout, cg).transpose(2, 3, 0, 1))):
        try:
            alt = general.to_layout(general.conv(X, misread, **params), "y", layout)
        except general.ConvError:
            continue
        if alt.shape != expected.shape or not np.array_equal(alt, expected):
            hyp[name] = alt
    return hyp


def check_general_vjp(target, case: spec.Case, verb: str = "conv_general_vjp") -> None:
    """``conv_general_vjp`` (autograd) or ``conv_general_backprop`` (the explicit gradient functions):
    both gradients, each against the exact one."""
    __tracebackhide__ = True
    exp = spec.general_expectation(case, target.dtype, target.arithmetic)
    result, gaps = _call_case(target, case, verb, exp.X, exp.K, exp.dY, **exp.params)
    check(isinstance(result, tuple | list) and len(result) == 2,
          f"{verb} on {case.id}: returned {type(result).__name__}, not the pair (dX, dK)")
    for name, actual in zip(("dX", "dK"), result, strict=True):
        what = f"{name} of {verb} on {case.id} ({target.id})"
        other = {"dX and dK swapped": exp.expected["dK" if name == "dX" else "dX"]}
        expecting(actual, exp.expected[name], what)
        got = read_result(target, actual, what=what)
        if got.shape != exp.expected[name].shape:
            named = [k for k, v in other.items() if v.shape == got.shape]
            if name == "dX" and got.shape[:2] == exp.X.shape[:2] \
                    and all(g <= x for g, x in zip(got.shape[2:], exp.X.shape[2:], strict=True)):
                named.append("the input size inferred from dY's shape, which a strided backward cannot tell "
                             "(pass X's shape: input_size, input_sizes)")
            pytest.fail(f"{what}: shape {_fmt(got.shape)}, expected {_fmt(exp.expected[name].shape)} (the shape of "
                        f"{'X' if name == 'dX' else 'K'}){fits(named)}", pytrace=False)
        note(**{f"output:{name}": got})
        assert_conforms(target, actual, exp.expected[name], tolerance=exp.tolerance[name], what=what,
                        hypotheses={k: v for k, v in other.items() if v.shape == got.shape})
    _gaps_conform(target, f"the gradients of {case.id} conform", gaps, give="them")


def check_general_error(target, case: spec.Case) -> None:
    """Invalid parameters must raise, never return a result."""
    __tracebackhide__ = True
    _check_error_case(target, case, "conv_general", spec.general.params_of(case.data["params"]),
                      ". Frameworks differ in what they refuse (an empty array, periodic reflection, a silently "
                      "accepted negative pad): call backends.base.general_geometry first, which raises ValueError",
                      X=case.input("X"), K=case.input("K"))


def pool_hypotheses(X, params: dict, expected: np.ndarray) -> dict[str, np.ndarray]:
    """Pooling's usual mistakes: the padded cells counted or not, floor for ceil or ceil without the
    last-window rule, 'same' by k//2, max for average."""
    from spec import general

    alts = []
    if params["kind"] == "avg":
        alts.append(("the padded cells counted in the average (count_include_pad=True where False is meant)"
                     if not params["count_include_pad"] else
                     "the padded cells left out of the average (count_include_pad=False where True is meant)",
                     {"count_include_pad": not params["count_include_pad"]}))
        alts.append(("maximum pooling where the average is meant", {"kind": "max"}))
    else:
        alts.append(("average pooling where the maximum is meant", {"kind": "avg"}))
    alts.append(("floor output sizes where ceil is meant" if params["ceil_mode"] else
                 "ceil output sizes where floor is meant", {"ceil_mode": not params["ceil_mode"]}))
    if params["padding"] == "same":
        kh, kw = params["window"]
        alts.append(("k//2 padding at both ends where 'same' is meant", {"padding": ((kh // 2, kh // 2),
                                                                                      (kw // 2, kw // 2))}))
    found = {}
    for name, change in alts:
        try:
            found[name] = general.pool(X, **{**params, **change})
        except general.ConvError:
            continue
    if params["ceil_mode"]:  # a plain ceil keeps a window wholly in the padding: its shape alone (no values)
        pads = general.pads(params["padding"], X.shape[2:], params["window"], params["stride"], (1, 1))
        plain = tuple(-(-(n + lo + hi - k) // s) + 1 for n, (lo, hi), k, s in
                      zip(X.shape[2:], pads, params["window"], params["stride"], strict=True))
        if plain != expected.shape[2:]:
            found["a plain ceil, which keeps a last window that starts past the input and the leading pad "
                  "(MXNet's pooling_convention='full'; torch drops it)"] = np.zeros((*expected.shape[:2], *plain))
    return {n: a for n, a in found.items() if not (a.shape == expected.shape and np.array_equal(a, expected))}


def check_pool(target, case: spec.Case) -> None:
    """``pool2d`` on a case: device, dtype, shape and values, with the mistakes that fit named; a
    convention the adapter declares unsupported may raise (a skip that says so)."""
    __tracebackhide__ = True
    exp = spec.pool_expectation(case, target.dtype, target.arithmetic)
    what = f"pool2d on {case.id} ({target.id})"
    actual, gaps = _call_case(target, case, "pool2d", exp.X, **exp.params)
    Xv = exp.X.astype(np.float64)
    expected = exp.expected["y"]
    hyp = functools.partial(pool_hypotheses, Xv, exp.params, expected)
    note(**{"output:pool2d": _general_shape(target, actual, expected, hyp, what, Xv, None, exp.params)})
    assert_conforms(target, actual, expected, tolerance=exp.tolerance["y"], what=what, hypotheses=hyp)
    _gaps_conform(target, f"{case.id} conforms", gaps)


def check_pool_error(target, case: spec.Case) -> None:
    __tracebackhide__ = True
    _check_error_case(target, case, "pool2d", spec.general.pool_params_of(case.data["params"]),
                      ": call backends.base.pool_geometry first, which raises ValueError", X=case.input("X"))


def transpose_hypotheses(X, K, params: dict, expected: np.ndarray) -> dict[str, np.ndarray]:
    """The transposed convolution's usual mistakes: the kernel flipped (lax.conv_transpose without
    transpose_kernel=True), its channel axes swapped, and one crop convention for the other."""
    from spec import general

    cin, cout, kh, kw = K.shape
    alts = [("kernel looks flipped (lax.conv_transpose without transpose_kernel=True)", {}, K[:, :, ::-1, ::-1])]
    if cin == cout and cin > 1:
        alts.append(("the kernel's input and output channels swapped (OIHW read as IOHW)", {}, K.transpose(1, 0, 2, 3)))
    (sh, sw) = params["stride"]
    if params["padding"] == "same":
        crop = {"padding": ((kh // 2, kh // 2), (kw // 2, kw // 2)), "output_padding": (sh - 1, sw - 1)}
        alts.append(("torch's crop (padding k//2, output_padding s-1) where TensorFlow's 'SAME' is meant", crop, K))
    else:
        alts.append(("TensorFlow's 'SAME' crop where explicit padding (and output_padding) is meant",
                     {"padding": "same", "output_padding": (0, 0)}, K))
    found = {}
    for name, change, kernel in alts:
        try:
            found[name] = general.conv_transpose(X, kernel, **{**params, **change})
        except general.ConvError:
            continue
    return {n: a for n, a in found.items() if not (a.shape == expected.shape and np.array_equal(a, expected))}


def check_transpose(target, case: spec.Case) -> None:
    """``conv_transpose`` on a case, the mistakes that fit named; a convention the adapter declares
    unsupported may raise (a skip that says so)."""
    __tracebackhide__ = True
    exp = spec.transpose_expectation(case, target.dtype, target.arithmetic)
    what = f"conv_transpose on {case.id} ({target.id})"
    actual, gaps = _call_case(target, case, "conv_transpose", exp.X, exp.K, **exp.params)
    Xv, Kv = exp.X.astype(np.float64), exp.K.astype(np.float64)
    expected = exp.expected["y"]
    hyp = functools.partial(transpose_hypotheses, Xv, Kv, exp.params, expected)
    note(**{"output:conv_transpose": _general_shape(target, actual, expected, hyp, what, Xv, Kv, exp.params)})
    assert_conforms(target, actual, expected, tolerance=exp.tolerance["y"], what=what, hypotheses=hyp)
    _gaps_conform(target, f"{case.id} conforms", gaps)


def check_transpose_error(target, case: spec.Case) -> None:
    __tracebackhide__ = True
    _check_error_case(target, case, "conv_transpose", spec.general.transpose_params_of(case.data["params"]),
                      ": call backends.base.transpose_geometry first, which raises ValueError",
                      X=case.input("X"), K=case.input("K"))


def check_adjoint(target, case: spec.Case) -> None:
    """``conv_transpose(dY, K)`` with the convolution's pads as crops (and the rows no window reached as
    output_padding) against the exact dX of the case."""
    __tracebackhide__ = True
    from spec import general

    exp = spec.general_expectation(case, target.dtype, target.arithmetic)
    p = exp.params
    X, K = exp.X, exp.K
    pads, rest = general.adjoint_crops(X.shape, K.shape, p)
    # The convolution's K (C_out, C_in, kh, kw) is the transposed convolution's (C_in, C_out, kh, kw).
    actual = call(target.backend, "conv_transpose", *native(target, "conv_transpose", exp.dY, K), stride=p["stride"],
                  dilation=p["dilation"], padding=pads, output_padding=rest)
    assert_conforms(target, actual, exp.expected["dX"], tolerance=exp.tolerance["dX"],
                    what=f"conv_transpose of dY on {case.id} ({target.id}), the adjoint of conv_general")
