"""The backend-neutral spec: cases as JSON data, and a NumPy-only loader.

``spec/cases/<section>.json`` holds one section of the chapter each, checked
against ``spec/schema.json`` when loaded; nothing here imports a framework.
A malformed file, a schema violation, an expected output whose shape breaks
the ``(nh-kh+1) x (nw-kw+1)`` rule, or a duplicate case id raises
:class:`SpecError` naming the file, the case and the reason.

For a narrower dtype the expected output is the exact oracle evaluated on the
inputs as rounded to that dtype (the frameworks see those, not the float64
values), and the tolerance is the error model of ``spec.numerics``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spec import general, learning, numerics, oracle

#: The suite's version (``pyproject.toml`` says the same; a meta-test keeps them equal).
#: Records carry it, and the agreement report compares only records of one version.
SUITE_VERSION = "0.2.0"

HERE = Path(__file__).parent
CASES_DIR = HERE / "cases"
SCHEMA_PATH = HERE / "schema.json"

#: Section files in chapter order.
SECTIONS = (
    "cross_correlation", "conv_layer", "edge_detection", "learning_kernel",
    "conv_vs_corr", "receptive_field", "exercises", "conventions",
)


class SpecError(ValueError):
    """The spec data is wrong; the message names the file and the case."""


@dataclass(frozen=True)
class Case:
    """One case: its raw data, with arrays converted to float64 NumPy."""

    file: str
    section: str
    data: dict[str, Any] = field(repr=False)

    @property
    def id(self) -> str:
        return self.data["id"]

    @property
    def kind(self) -> str:
        return self.data["kind"]

    @property
    def ops(self) -> list[str]:
        return self.data.get("ops", [])

    def input(self, name: str) -> np.ndarray:
        return np.array(self.data["inputs"][name], dtype=np.float64)

    @property
    def bias(self) -> float | None:
        return self.data.get("inputs", {}).get("b")

    def array(self, *path: str) -> np.ndarray:
        value: Any = self.data
        for key in path:
            value = value[key]
        return np.array(value, dtype=np.float64)

    def __str__(self) -> str:
        return f"{self.file}::{self.id}"


def _validator():
    import jsonschema  # the one non-NumPy dependency: checks data, runs no code

    schema = json.loads(SCHEMA_PATH.read_text())
    return jsonschema.Draft202012Validator(schema)


def load_file(path: Path, validator=None) -> list[Case]:
    """Parse and check one section file (plain JSON: no pickle, no code)."""
    validator = validator or _validator()
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"), parse_constant=_no_constant, parse_float=_finite)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpecError(f"{path}: not readable JSON: {exc}") from exc
    except _NotFinite as exc:
        raise SpecError(f"{path}: {exc}: every value of the spec is a finite number") from exc
    seen = _validated_marker(path)
    errors = [] if seen is not None and seen.exists() else sorted(validator.iter_errors(doc),
                                                                  key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path)
        case_id = _case_id_at(doc, err.absolute_path)
        raise SpecError(f"{path}: case {case_id}: schema violation at /{where}: {err.message}")
    cases = [Case(Path(path).name, doc["section"], c) for c in doc["cases"]]
    for case in cases:
        _check_shapes(case)
    if seen is not None and not seen.exists():
        try:
            seen.parent.mkdir(parents=True, exist_ok=True)
            seen.touch()
        except OSError:
            pass  # no cache: the next process validates again
    return cases


def _validated_marker(path: Path) -> Path | None:
    """A file whose existence says that these exact bytes passed this exact schema under this
    jsonschema version (validation costs most of a second per process, and the harness's own tests
    start hundreds); named by the SHA-256 of all three, so any change to any of them validates anew."""
    from importlib import metadata

    try:
        version = metadata.version("jsonschema")
        digest = hashlib.sha256(SCHEMA_PATH.read_bytes() + b"\0" + Path(path).read_bytes() + b"\0"
                                + version.encode()).hexdigest()
    except (OSError, metadata.PackageNotFoundError):
        return None
    user = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir(), f"conv-conformance-{user}", "validated", digest)


class _NotFinite(ValueError):
    pass


def _no_constant(name: str):
    """Python's json reads NaN, Infinity and -Infinity, which JSON does not have; the spec refuses them."""
    raise _NotFinite(f"{name} is not a number")


def _finite(text: str) -> float:
    value = float(text)
    if not np.isfinite(value):
        raise _NotFinite(f"{text} overflows to {value}")
    return value


def _case_id_at(doc, path) -> str:
    parts = list(path)
    if len(parts) >= 2 and parts[0] == "cases" and isinstance(doc.get("cases"), list):
        try:
            return repr(doc["cases"][parts[1]].get("id", f"#{parts[1]}"))
        except (IndexError, AttributeError):
            pass
    return "(file level)"


def _rectangular(case: Case, *path: str) -> np.ndarray:
    try:
        return case.array(*path)
    except ValueError:
        raise SpecError(f"{case}: {'/'.join(path)} is ragged, not a rectangular 2-D array") from None


def _check_shapes(case: Case) -> None:
    if case.kind in ("general", "general_error"):
        _check_general(case)
        return
    if case.kind in ("transpose", "transpose_error"):
        X, K = _tensor(case, "inputs", "X"), _tensor(case, "inputs", "K")
        try:
            _, shape = general.transpose_check(X.shape, K.shape, **general.transpose_params_of(case.data["params"]))
        except general.ConvError as exc:
            if case.kind == "transpose_error":
                return
            raise SpecError(f"{case}: invalid parameters: {exc}") from None
        if case.kind == "transpose_error":
            raise SpecError(f"{case}: expects an error, but the parameters are valid (output {shape})")
        if _tensor(case, "expected").shape != tuple(shape):
            raise SpecError(f"{case}: expected has shape {_tensor(case, 'expected').shape}, but the definition "
                            f"gives {tuple(shape)}")
        return
    if case.kind in ("pool", "pool_error"):
        X = _tensor(case, "inputs", "X")
        try:
            _, shape = general.pool_check(X.shape, **general.pool_params_of(case.data["params"]))
        except general.ConvError as exc:
            if case.kind == "pool_error":
                return
            raise SpecError(f"{case}: invalid parameters: {exc}") from None
        if case.kind == "pool_error":
            raise SpecError(f"{case}: expects an error, but the parameters are valid (output {shape})")
        if _tensor(case, "expected").shape != tuple(shape):
            raise SpecError(f"{case}: expected has shape {_tensor(case, 'expected').shape}, but the definition "
                            f"gives {tuple(shape)}")
        return
    if case.kind not in ("correlation", "error"):
        for name in case.data.get("inputs", {}):
            _rectangular(case, "inputs", name)
        return
    X, K = _rectangular(case, "inputs", "X"), _rectangular(case, "inputs", "K")
    out = (X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1)
    if case.kind == "error":
        if min(out) >= 1:
            raise SpecError(f"{case}: expects an error, but kernel {K.shape} fits the input {X.shape}")
        return
    expected = _rectangular(case, "expected")
    if expected.shape != out:
        raise SpecError(
            f"{case}: expected output has shape {expected.shape}, but a {X.shape[0]}x{X.shape[1]} input "
            f"and a {K.shape[0]}x{K.shape[1]} kernel give (nh-kh+1) x (nw-kw+1) = {out[0]}x{out[1]}"
        )


def _tensor(case: Case, *path: str) -> np.ndarray:
    try:
        a = case.array(*path)
    except ValueError:
        raise SpecError(f"{case}: {'/'.join(path)} is ragged, not a rectangular 4-D array") from None
    if a.ndim != 4:
        raise SpecError(f"{case}: {'/'.join(path)} is {a.ndim}-D, not 4-D")
    return a


def _check_general(case: Case) -> None:
    """The parameters are valid (or, for an error case, invalid) by the definition in spec.general,
    and every expected array has the shape that definition gives."""
    X, K = _tensor(case, "inputs", "X"), _tensor(case, "inputs", "K")
    params = general.logical(general.params_of(case.data["params"]))
    try:
        _, shape = general.check(X.shape, K.shape, **params)
    except general.ConvError as exc:
        if case.kind == "general_error":
            return
        raise SpecError(f"{case}: invalid parameters: {exc}") from None
    if case.kind == "general_error":
        raise SpecError(f"{case}: expects an error, but the parameters are valid (output {shape})")
    for path, want in ((("expected",), shape), (("inputs", "dY"), shape), (("expected_grad", "dX"), X.shape),
                       (("expected_grad", "dK"), K.shape)):
        node = case.data
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None and _tensor(case, *path).shape != tuple(want):
            raise SpecError(f"{case}: {'/'.join(path)} has shape {_tensor(case, *path).shape}, but the definition "
                            f"gives {tuple(want)}")
    if ("dY" in case.data["inputs"]) != ("expected_grad" in case.data):
        raise SpecError(f"{case}: a gradient needs both inputs/dY and expected_grad")


@functools.cache
def load(cases_dir: str = str(CASES_DIR)) -> dict[str, list[Case]]:
    """All section files, by section name; case ids are unique across them."""
    validator = _validator()
    sections, seen = {}, {}
    for name in SECTIONS:
        path = Path(cases_dir) / f"{name}.json"
        if not path.exists():
            raise SpecError(f"{path}: section file missing")
        sections[name] = load_file(path, validator)
        for case in sections[name]:
            if case.id in seen:
                raise SpecError(f"{case}: duplicate case id (first defined in {seen[case.id]})")
            seen[case.id] = str(case)
    return sections


def all_cases() -> list[Case]:
    """Every case of every section, in chapter order."""
    return [c for cs in load().values() for c in cs]


def find(case_id: str) -> Case:
    """The case with this id (ids are unique across sections and the adapters' own cases)."""
    found = next((c for c in all_cases() if c.id == case_id), None)
    if found is None:
        found = next((c for cs in ADAPTER_CASES.values() for c in cs if c.id == case_id), None)
    if found is None:
        raise SpecError(f"no case {case_id!r} in the spec (nor among the adapters' own cases)")
    return found


#: The fixed cases an adapter ships with itself (``Backend.cases``): ``{adapter label: cases}``, registered
#: by ``conftest.py`` when the adapter is loaded.  They back the deviations an out-of-tree adapter declares
#: (a known deviation is a fixed case), and run on that adapter only.
ADAPTER_CASES: dict[str, list[Case]] = {}
#: The kinds an adapter's own case may have: the conventions section's.
ADAPTER_KINDS = ("general", "general_error", "pool", "pool_error", "transpose", "transpose_error")


def register_adapter_cases(owner: str, path: Path) -> list[Case]:
    """Load, validate like the suite's own (schema, shapes, parameters) and check against the oracle an
    adapter's own case file; its ids must be new.  Raises :class:`SpecError` naming the file and case."""
    cases = load_file(Path(path))
    taken = {c.id for c in all_cases()} | {c.id for o, cs in ADAPTER_CASES.items() if o != owner for c in cs}
    seen = set()
    for case in cases:
        if case.kind not in ADAPTER_KINDS:
            raise SpecError(f"{path}: case {case.id}: an adapter's own case is of a kind of the conventions section "
                            f"({', '.join(ADAPTER_KINDS)}), not {case.kind}")
        if case.id in taken or case.id in seen:
            raise SpecError(f"{path}: case {case.id}: the id is taken (by the spec or another adapter's cases)")
        seen.add(case.id)
        if (wrong := _against_the_oracle(case)) is not None:
            raise SpecError(f"{path}: case {case.id}: {wrong}")
    ADAPTER_CASES[owner] = cases
    return cases


def _against_the_oracle(case: Case) -> str | None:
    """Why a case's expected values are not the oracle's (``None``: they are), or its error not an error."""
    X = case.input("X")
    if case.kind.startswith("general"):
        params = general.logical(general.params_of(case.data["params"]))
        if case.kind == "general_error":
            return None  # _check_shapes has checked that the definition refuses it
        got = {"expected": general.conv(X, case.input("K"), **params)}
        if "expected_grad" in case.data:
            got["expected_grad/dX"], got["expected_grad/dK"] = general.vjp(X, case.input("K"), case.input("dY"),
                                                                         **params)
    elif case.kind.startswith("pool"):
        params = general.pool_params_of(case.data["params"])
        if case.kind == "pool_error":
            try:
                general.pool_check(X.shape, **params)
            except general.ConvError:
                return None
            return "expects an error, but the pooling's parameters are valid"
        got = {"expected": general.pool(X, **params)}
    else:
        params = general.transpose_params_of(case.data["params"])
        if case.kind == "transpose_error":
            try:
                general.transpose_check(X.shape, case.input("K").shape, **params)
            except general.ConvError:
                return None
            return "expects an error, but the transposed convolution's parameters are valid"
        got = {"expected": general.conv_transpose(X, case.input("K"), **params)}
    for path, value in got.items():
        stored = case.array(*path.split("/"))
        if stored.shape != value.shape or not np.array_equal(stored, value):
            return f"{path} is not the oracle's result (spec/general.py): write what it computes"
    return None


def cases(section: str, *, kind: str | None = None) -> list[Case]:
    return [c for c in load()[section] if kind is None or c.kind == kind]


def by_op(section: str, kind: str = "correlation") -> list[tuple[Case, str]]:
    """``(case, op)`` pairs: each case once per verb it applies to."""
    return [(c, op) for c in cases(section, kind=kind) for op in c.ops]


# -- expected values and tolerances for correlation cases ---------------------


@dataclass(frozen=True)
class Expectation:
    """What one correlation case expects in one dtype."""

    X: np.ndarray  # inputs rounded to the dtype, in their NumPy container
    K: np.ndarray
    b: np.ndarray | None
    expected: np.ndarray  # float64
    tolerance: np.ndarray  # float64, elementwise bound on |actual - expected|
    rule: str  # the rule actually applied for this dtype


@functools.cache
def _expectation(case_id: str, dtype: str, arithmetic: str) -> Expectation:
    case = find(case_id)
    X, K = case.input("X"), case.input("K")
    b = case.bias
    Xr, Kr = numerics.round_to(X, dtype), numerics.round_to(K, dtype)
    br = None if b is None else float(numerics.round_to(np.array([b]), dtype)[0])
    if np.array_equal(Xr, X) and np.array_equal(Kr, K) and b == br:
        expected = case.array("expected")  # the stored truth, checked against the oracle in tests/meta
    else:
        expected = oracle.corr2d(Xr, Kr, br or 0.0)
    magnitude = oracle.abs_corr2d(Xr, Kr, br or 0.0)
    rule = case.data["tolerance"]["rule"]
    if rule == "exact" and not numerics.rounding_free(magnitude, Xr, Kr, br or 0.0, arithmetic):
        rule = "error_bound"
    if rule == "exact":
        tolerance = np.zeros_like(expected)
    else:
        n = K.size + 1 + (b is not None)
        tolerance = case.data["tolerance"].get("c", 1) * numerics.gamma(n, arithmetic) * magnitude
    return Expectation(
        numerics.container(X, dtype), numerics.container(K, dtype),
        None if b is None else numerics.container(np.array([b]), dtype),
        expected, tolerance, rule,
    )


def expectation(case: Case, dtype: str, arithmetic: str | None = None) -> Expectation:
    """Inputs, expected output and tolerance of a correlation case in ``dtype``.

    ``arithmetic`` is the format whose rounding the tolerance allows for:
    ``dtype`` itself (the default), or ``"tfloat32"`` for float32 computed in
    TF32 (the fast precision mode).
    """
    return _expectation(case.id, dtype, arithmetic or dtype)


# -- expected values and tolerances for general-convolution cases ---------------


@dataclass(frozen=True)
class GeneralExpectation:
    """What one general-convolution case expects in one dtype: the output and, with a cotangent,
    the gradients; each with its elementwise tolerance."""

    X: np.ndarray  # inputs rounded to the dtype, in their NumPy container
    K: np.ndarray
    dY: np.ndarray | None
    params: dict
    expected: dict  # "y", and with a cotangent "dX", "dK": float64 arrays
    tolerance: dict  # the same keys


@functools.cache
def _general_expectation(case_id: str, dtype: str, arithmetic: str) -> GeneralExpectation:
    case = find(case_id)
    dY = case.input("dY") if "dY" in case.data["inputs"] else None
    stored = {"y": case.array("expected")}
    if dY is not None:
        stored["dX"], stored["dK"] = case.array("expected_grad", "dX"), case.array("expected_grad", "dK")
    return general_arrays(case.input("X"), case.input("K"), dY, general.params_of(case.data["params"]), dtype,
                          arithmetic, rule=case.data["tolerance"]["rule"], c=case.data["tolerance"].get("c", 1),
                          stored=stored)


def general_arrays(X, K, dY, params: dict, dtype: str, arithmetic: str | None = None, *, rule: str = "exact",
                   c: float = 1, stored: dict | None = None) -> GeneralExpectation:
    """Expected values and tolerances of a general convolution of these arrays in ``dtype``: the exact
    result on the inputs rounded to ``dtype`` (``stored`` where the rounding changes nothing), and per
    element 0 where no operation can round (``rule`` "exact"), else Higham's gamma bound, with n the
    exact number of products behind the element plus one rounding."""
    arithmetic = arithmetic or dtype
    layout, params = params.get("layout", "nchw"), general.logical(params)
    arrays = [a for a in (X, K, dY) if a is not None]
    rounded = [numerics.round_to(a, dtype) for a in arrays]
    same = stored is not None and all(np.array_equal(r, a) for r, a in zip(rounded, arrays, strict=True))
    Xr, Kr = rounded[0], rounded[1]
    expected = {"y": stored["y"] if same else general.conv(Xr, Kr, **params)}
    cout, cg, kh, kw = K.shape
    # Higham's bound per output element: a dot product of Cg*kh*kw terms, plus the final rounding.
    magnitudes = {"y": (general.magnitude(Xr, Kr, **params), cg * kh * kw + 1)}
    if dY is not None:
        dYr = rounded[2]
        if same:
            expected["dX"], expected["dK"] = stored["dX"], stored["dK"]
        else:
            expected["dX"], expected["dK"] = general.vjp(Xr, Kr, dYr, **params)
        mX, mK = general.vjp(np.abs(Xr), np.abs(Kr), np.abs(dYr), **params)
        # The number of products behind each gradient element, counted exactly (all-ones operands): a
        # padded copy of a cell (reflect, replicate, circular) adds its products to that cell.
        nX, nK = general.vjp(np.ones_like(Xr), np.ones_like(Kr), np.ones_like(dYr), **params)
        magnitudes["dX"] = (mX, int(nX.max(initial=0)) + 1)
        magnitudes["dK"] = (mK, int(nK.max(initial=0)) + 1)
    tolerance = {}
    for key, (mag, n) in magnitudes.items():
        operands = (Xr, Kr) if key == "y" else ((rounded[2], Kr) if key == "dX" else (rounded[2], Xr))
        if rule == "exact" and numerics.rounding_free(mag, *operands, 0.0, arithmetic):
            tolerance[key] = np.zeros_like(expected[key])
        else:
            tolerance[key] = c * numerics.gamma(max(n, 2), arithmetic) * mag
    if layout != "nchw":  # the same values, handed over and expected in that layout
        X, K = general.to_layout(X, "X", layout), general.to_layout(K, "K", layout)
        dY = None if dY is None else general.to_layout(dY, "dY", layout)
        expected = {key: general.to_layout(a, key, layout) for key, a in expected.items()}
        tolerance = {key: general.to_layout(a, key, layout) for key, a in tolerance.items()}
        params = {**params, "layout": layout}
    return GeneralExpectation(
        numerics.container(X, dtype), numerics.container(K, dtype),
        None if dY is None else numerics.container(dY, dtype), params, expected, tolerance)


@functools.cache
def _pool_expectation(case_id: str, dtype: str, arithmetic: str) -> GeneralExpectation:
    case = find(case_id)
    return pool_arrays(case.input("X"), general.pool_params_of(case.data["params"]), dtype, arithmetic,
                       c=case.data["tolerance"].get("c", 1), stored=case.array("expected"))


def pool_arrays(X, params: dict, dtype: str, arithmetic: str | None = None, *, c: float = 1,
                stored: np.ndarray | None = None) -> GeneralExpectation:
    """Expected values and tolerances of a pooling of ``X`` in ``dtype`` (``stored``: the exact result on
    ``X``, used where rounding to the dtype changes nothing)."""
    arithmetic = arithmetic or dtype
    Xr = numerics.round_to(X, dtype)
    expected = stored if stored is not None and np.array_equal(Xr, X) else general.pool(Xr, **params)
    if params["kind"] == "max":  # the maximum is one of the inputs: no arithmetic, no rounding
        tolerance = np.zeros_like(expected)
    else:  # a sum of at most kh*kw terms, one division, one final rounding (spec/build.py: POOL_AVERAGE)
        (kh, kw) = params["window"]
        magnitude = general.pool(np.abs(Xr), **params)
        tolerance = c * numerics.gamma(kh * kw + 2, arithmetic) * magnitude
    return GeneralExpectation(numerics.container(X, dtype), None, None, params, {"y": expected}, {"y": tolerance})


@functools.cache
def _transpose_expectation(case_id: str, dtype: str, arithmetic: str) -> GeneralExpectation:
    case = find(case_id)
    params = general.transpose_params_of(case.data["params"])
    X, K = case.input("X"), case.input("K")
    Xr, Kr = numerics.round_to(X, dtype), numerics.round_to(K, dtype)
    same = np.array_equal(Xr, X) and np.array_equal(Kr, K)
    expected = case.array("expected") if same else general.conv_transpose(Xr, Kr, **params)
    magnitude = general.conv_transpose(np.abs(Xr), np.abs(Kr), **params)
    # An output cell sums at most C_in * kh * kw products (fewer under a stride), plus the final rounding.
    n = K.shape[0] * K.shape[2] * K.shape[3] + 1
    if case.data["tolerance"]["rule"] == "exact" and numerics.rounding_free(magnitude, Xr, Kr, 0.0, arithmetic):
        tolerance = np.zeros_like(expected)
    else:
        tolerance = case.data["tolerance"].get("c", 1) * numerics.gamma(n, arithmetic) * magnitude
    return GeneralExpectation(numerics.container(X, dtype), numerics.container(K, dtype), None, params,
                              {"y": expected}, {"y": tolerance})


def transpose_expectation(case: Case, dtype: str, arithmetic: str | None = None) -> GeneralExpectation:
    """Inputs, expected output and tolerance of a transposed-convolution case in ``dtype``."""
    return _transpose_expectation(case.id, dtype, arithmetic or dtype)


def pool_expectation(case: Case, dtype: str, arithmetic: str | None = None) -> GeneralExpectation:
    """Input, expected output and tolerance of a pooling case in ``dtype``."""
    return _pool_expectation(case.id, dtype, arithmetic or dtype)


def general_expectation(case: Case, dtype: str, arithmetic: str | None = None) -> GeneralExpectation:
    """Inputs, expected values and tolerances of a general-convolution case in ``dtype``."""
    return _general_expectation(case.id, dtype, arithmetic or dtype)


@functools.cache
def fingerprint() -> str:
    """SHA-256 of the spec as run: every case file, the schema, and the code that
    turns cases into expected values and tolerances (``spec/*.py``).  Records
    carry it; records of different fingerprints are never compared."""
    h = hashlib.sha256()
    files = sorted(CASES_DIR.glob("*.json")) + [SCHEMA_PATH] + sorted(HERE.glob("*.py"))
    for path in files:
        h.update(path.relative_to(HERE).as_posix().encode() + b"\0")
        h.update(path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return h.hexdigest()


__all__ = [
    "SUITE_VERSION", "fingerprint", "CASES_DIR", "SECTIONS", "Case", "Expectation", "SpecError",
    "all_cases", "by_op", "cases", "expectation", "find", "general", "general_expectation", "learning", "load",
    "pool_expectation", "transpose_expectation", "general_arrays",
    "load_file", "numerics", "oracle",
]
