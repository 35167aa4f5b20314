"""The agreement report: merge the results records of one matrix run.

``python -m report open RESULTS_DIR`` opens a matrix run (``report/matrix.py``);
the envs then write their records; ``python -m report RESULTS_DIR --expect
numpy,torch,...`` reads every ``<backend>.json`` record and the ``.npz`` it
names, compares the seeded random-valued outputs and the fixed-start
kernel-learning trajectories of every pair of backend/device targets, and writes
``agreement.md``, ``agreement.html`` and ``agreement.png`` into the folder.

The report believes a record only when it is of this matrix run (its run id,
started after the run was opened), complete (a whole-suite run that ended
normally: not filtered, interrupted or short of checks), of the same suite
version and spec fingerprint as the report itself, and its ``.npz`` hashes to
the SHA-256 it states.  Anything else is a named problem, and the report exits
non-zero, as it does when a pair disagrees beyond tolerance, a test failed, a
backend is not conformant, or an expected record is missing: a CI job cannot
turn green on a partial or stale matrix.  ``--partial`` lets a person look at
incomplete or stale records; the report then never says AGREE.

Pair tolerance: each output is within its own tolerance of the exact oracle
(``t_a`` and ``t_b``: the spec's, for the target's dtype and precision mode),
so two conforming outputs differ by at most ``t_a + t_b``; a pair's
"tolerance units" are ``max |a - b| / (t_a + t_b)`` (0 when both are
identical).  Targets are ``backend/device``, with ``/fast`` appended for the
fast precision mode; the CPU and GPU targets of one backend are compared like
any other pair.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import numpy as np

import spec
from report import matrix
from spec import general, learning, numerics

RECORD_FORMAT = "conv-conformance-record/2"
#: How the reason of every xfail or skip from a known-deviation list (``spec/xfails``) starts.
KNOWN_DEVIATION = "known deviation"


def is_deviation(result: dict) -> bool:
    """A record entry (or a session entry) that a known-deviation list accounts for."""
    return result["outcome"] in ("xfailed", "xpassed") or (
        result["outcome"] == "skipped" and (result["reason"] or "").startswith(KNOWN_DEVIATION))
RECORD_SCHEMA = json.loads((Path(__file__).parent / "record.schema.json").read_text())


class RecordError(RuntimeError):
    """A record is missing, truncated, lacks a field, or is not a record."""


@dataclass
class Record:
    path: Path
    meta: dict
    outputs: dict[str, np.ndarray]

    @property
    def backend(self) -> str:
        return self.meta["backend"]


def read_record(path: Path) -> Record:
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path}: unreadable record ({type(exc).__name__}: {exc}); "
                          "was the run killed while writing it? Re-run that env.") from exc
    if not isinstance(meta, dict) or meta.get("format") != RECORD_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise RecordError(f"{path}: not a {RECORD_FORMAT} record (format: {found!r}); re-run that env")
    try:
        jsonschema.validate(meta, RECORD_SCHEMA)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "the top level"
        raise RecordError(f"{path}: malformed record at {where}: {exc.message}") from exc
    npz = path.parent / meta["outputs"]["file"]
    try:
        data = npz.read_bytes()
    except OSError as exc:
        raise RecordError(f"{npz}: outputs of {path.name} unreadable ({type(exc).__name__}: {exc})") from exc
    if hashlib.sha256(data).hexdigest() != meta["outputs"]["sha256"]:
        raise RecordError(f"{npz}: its SHA-256 is not the one {path.name} states: the outputs are not the ones "
                          "that run wrote (another run's, or changed since); re-run that env")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            outputs = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise RecordError(f"{npz}: outputs of {path.name} unreadable ({type(exc).__name__}: {exc})") from exc
    return Record(path, meta, outputs)


@dataclass
class Comparison:
    """One pair of targets on one output."""

    case: str
    what: str
    dtype: str
    a: str
    b: str
    max_abs_diff: float
    units: float


@dataclass
class Report:
    records: list[Record]
    problems: list[str] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    #: What ``--partial`` let through: shown, and the verdict is never AGREE.
    partial: list[str] | None = None
    run: dict | None = None

    @property
    def disagreements(self) -> list[Comparison]:
        return [c for c in self.comparisons if not c.units <= 1]  # NaN is a disagreement

    @property
    def failures(self) -> list[dict]:
        return [r | {"backend": rec.backend} for rec in self.records for r in rec.meta["results"]
                if r["outcome"] in ("failed", "error")]

    @property
    def ok(self) -> bool:
        return self.partial is None and not (self.problems or self.disagreements or self.failures)


def _belongs(rec: Record, run: dict | None) -> list[str]:
    """Why a record is not this matrix run's complete record (empty: it is)."""
    meta, name, why = rec.meta, rec.path.name, []
    r = meta["run"]
    if run is not None and r["id"] != run["run_id"]:
        why.append(f"{name}: from matrix run {r['id'] or '(none)'} started {r['started']}, not from this run "
                   f"{run['run_id']} opened {run['opened']}: a record left by an earlier run (did {rec.backend}'s env "
                   "fail to install, or not run?)")
    elif run is not None and r["started_ts"] < run["opened_ts"]:
        why.append(f"{name}: its run started {r['started']}, before this matrix run was opened ({run['opened']})")
    if not r["complete"]:
        because = "; ".join(r["incomplete_because"]) or f"exit status {r['exit_status']}"
        why.append(f"{name}: an incomplete record ({because})")
    return why


def load(folder: Path, expect: list[str], *, partial: bool = False) -> Report:
    report = Report([], partial=[] if partial else None)
    try:
        report.run = matrix.read_run(folder)
    except matrix.MatrixError as exc:
        report.problems.append(str(exc))
    else:
        if report.run is None:
            report.problems.append(f"{folder}: no matrix run was opened here, so no record can be told from one left "
                                   f"by an earlier run: python -m report open {folder}, then run the envs")
    if not expect and report.run:
        expect = report.run.get("expect") or []
    for path in sorted(folder.glob("*.json")):
        if path.name == matrix.MATRIX_FILE:
            continue
        try:
            rec = read_record(path)
        except RecordError as exc:
            report.problems.append(str(exc))
            continue
        stale = _belongs(rec, report.run)
        if stale and report.partial is None:
            report.problems += stale
            continue
        if stale:
            report.partial += stale
        report.records.append(rec)
    own = (spec.SUITE_VERSION, spec.fingerprint())
    for what, index in (("suite version", 0), ("spec fingerprint", 1)):
        seen = {(r.meta["suite"]["version"], r.meta["suite"]["spec_fingerprint"])[index]: r.path.name
                for r in report.records}
        if set(seen) - {own[index]}:
            report.problems.append(
                f"records of another {what} than this report's ({own[index][:16]}): "
                + ", ".join(f"{name}: {value[:16]}" for value, name in sorted(seen.items()) if value != own[index])
                + "; records of different suites or specs are never compared: re-run those envs")
    for rec in report.records:
        verdict = rec.meta["verdict"]
        if not verdict["headline"].startswith("CONFORMANT") and rec.meta["run"]["complete"]:
            report.problems.append(f"{rec.backend}: {verdict['headline']}: "
                                   + "; ".join(verdict["not_conformant"] or ["failed checks (below)"]))
    present = {r.backend for r in report.records}
    for name in expect:
        if name not in present and not any(f"{name}.json" in p for p in report.problems):
            report.problems.append(f"{folder}/{name}.json: no record for backend {name!r}, which this run was "
                                   "meant to cover (its env crashed, was killed, or did not run)")
    if not report.records and not report.problems:
        report.problems.append(f"{folder}: no records at all")
    return report


def _tolerance(case_id: str, what: str, dtype: str, precision: str) -> np.ndarray | float:
    """One target's tolerance against the exact result."""
    case = spec.find(case_id)
    arith = numerics.arithmetic(dtype, precision)
    if case.kind == "kernel_learning":
        X, Y = case.input("X"), case.input("Y")
        ref = learning.replay(X, Y, case.array("initial"), lr=case.data["lr"], steps=case.data["steps"])
        b = learning.bounds(X, Y, ref, lr=case.data["lr"], dtype=arith, c=case.data["tolerance"]["c"])
        return b.losses if what == "losses" else b.kernel
    if case.kind == "transpose":
        return spec.transpose_expectation(case, dtype, arith).tolerance["y"]
    if case.kind == "pool":
        return spec.pool_expectation(case, dtype, arith).tolerance["y"]
    if case.kind == "general":  # what: conv_general, dX or dK
        return spec.general_expectation(case, dtype, arith).tolerance["y" if what == "conv_general" else what]
    return spec.expectation(case, dtype, arith).tolerance


#: How the outputs of generated cases begin (tests/test_generated.py): compared on identical draws.
GENERATED = "generated-"
#: What a generated output carries beside it: the draw, from which the report recomputes the tolerance.
DRAW_PARTS = ("-X", "-K", "-params")
#: The generated outputs of the chapter's verbs (test_generated_corr2d_matches_the_oracle), one kind each.
CHAPTER_VERBS = ("corr2d", "conv2d", "corr2d_matmul")


def draw_params(params: dict) -> np.ndarray:
    """A generated case's parameters as JSON bytes in an array (records hold arrays only)."""
    text = json.dumps(params, sort_keys=True, default=list)
    return np.frombuffer(text.encode(), dtype=np.uint8).astype(np.float64)


def draw_digest(X, K, params: dict) -> str:
    """Which draw: a digest of its inputs and parameters, the same for every backend that drew it."""
    return hashlib.sha256(np.ascontiguousarray(X, dtype=np.float64).tobytes() + b"|"
                          + np.ascontiguousarray(K, dtype=np.float64).tobytes() + b"|"
                          + draw_params(params).tobytes()).hexdigest()[:16]


@functools.cache
def _generated_tolerance(kind: str, x: bytes, x_shape: tuple, k: bytes, k_shape: tuple, text: bytes, dtype: str,
                         precision: str) -> np.ndarray:
    X = np.frombuffer(x, dtype=np.float64).reshape(x_shape)
    K = np.frombuffer(k, dtype=np.float64).reshape(k_shape)
    arithmetic = numerics.arithmetic(dtype, precision)
    if kind == "pool":  # tests/test_generated.py: test_generated_pool_matches_the_oracle (no kernel)
        return spec.pool_arrays(X, general.pool_params_of(json.loads(text)), dtype, arithmetic).tolerance["y"]
    if kind in CHAPTER_VERBS:  # the chapter's verbs on 2-D X and K: one channel, 'valid', no stride
        return spec.general_arrays(X[None, None], K[None, None], None, general.params_of({}), dtype,
                                   arithmetic).tolerance["y"][0, 0]
    if kind not in ("integers", "floats"):
        raise RecordError(f"generated output of an unknown kind {kind!r}")
    rule = "error_bound" if kind == "floats" else "exact"
    return spec.general_arrays(X, K, None, general.params_of(json.loads(text)), dtype, arithmetic,
                               rule=rule).tolerance["y"]


def _draw_tolerance(outputs: dict, case: str, what: str, device: str, dtype: str, precision: str) -> np.ndarray:
    """The tolerance of one target's generated output, recomputed from the draw the record holds, after
    checking that the draw is the one its key names."""
    parts = {}
    for part in DRAW_PARTS:
        value = outputs.get("|".join((case, what + part, device, dtype, precision)))  # tests/records.py's key
        if value is None:
            raise RecordError(f"generated output {what} ({device}, {dtype}, {precision}) comes without its draw "
                              f"({part.lstrip('-')})")
        parts[part] = value
    X, K, raw = parts["-X"], parts["-K"], parts["-params"]
    try:
        text = raw.astype(np.uint8).tobytes()
        params = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        params = None
    if not isinstance(params, dict) or draw_digest(X, K, params) != what.rsplit("-", 1)[1]:
        raise RecordError(f"generated output {what}: the draw it carries is not the one its name digests")
    X, K = np.ascontiguousarray(X, dtype=np.float64), np.ascontiguousarray(K, dtype=np.float64)
    try:
        return _generated_tolerance(what.split("-")[1], X.tobytes(), X.shape, K.tobytes(), K.shape, text, dtype,
                                    precision)
    except (KeyError, TypeError, ValueError, IndexError) as exc:  # ConvError is a ValueError
        raise RecordError(f"generated output {what}: its draw is not a valid case ({type(exc).__name__}: "
                          f"{exc})") from None


def compare(report: Report) -> None:
    groups: dict[tuple[str, str, str], dict[str, tuple[np.ndarray, str]]] = defaultdict(dict)
    stored: dict[tuple[str, str, str, str], np.ndarray] = {}  # generated cases: each target's own tolerance
    for rec in report.records:
        for key, value in rec.outputs.items():
            case, what, device, dtype, *rest = key.split("|")
            precision = rest[0] if rest else "strict"
            name = f"{rec.backend}/{device}" + ("" if precision == "strict" else f"/{precision}")
            if what.startswith(GENERATED):
                if what.endswith(DRAW_PARTS):
                    continue
                try:
                    stored[case, what, dtype, name] = _draw_tolerance(rec.outputs, case, what, device, dtype,
                                                                      precision)
                except RecordError as exc:
                    report.problems.append(f"{rec.path.name}: {exc}")
                    continue
            groups[case, what, dtype][name] = value, precision
    for (case, what, dtype), by_target in sorted(groups.items()):
        names = sorted(by_target)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                (A, pa), (B, pb) = by_target[a], by_target[b]
                if what.startswith(GENERATED):  # a drawn case: the bound each target is held to, summed
                    tol = stored[case, what, dtype, a] + stored[case, what, dtype, b]
                else:
                    tol = _tolerance(case, what, dtype, pa) + _tolerance(case, what, dtype, pb)
                if A.shape != B.shape:
                    report.comparisons.append(Comparison(case, what, dtype, a, b, float("inf"), float("inf")))
                    continue
                diff = np.abs(A - B)
                if what == "kernel":  # the bound is on the 2-norm of the kernel difference
                    diff = np.array(np.linalg.norm(A - B))
                with np.errstate(divide="ignore", invalid="ignore"):
                    units = np.where(diff == 0, 0.0, diff / tol)
                report.comparisons.append(
                    Comparison(case, what, dtype, a, b, float(diff.max(initial=0)), float(units.max(initial=0))))


def build(folder: Path, expect: list[str], *, partial: bool = False) -> Report:
    report = load(folder, expect, partial=partial)
    compare(report)
    return report
