"""The agreement report: merge the results records of a matrix run.

``python -m report RESULTS_DIR --expect numpy,torch,...`` reads every
``<backend>.json`` record and its ``.npz`` outputs, compares the seeded
random-valued outputs and the fixed-start kernel-learning trajectories of every
pair of backend/device targets, and writes ``agreement.md``, ``agreement.html``
and ``agreement.png`` into the folder.  It exits non-zero when a pair disagrees
beyond tolerance, a test failed, an expected record is missing, or a record is
unreadable: a CI job cannot turn green on a partial matrix.

Pair tolerance: each output is within its own tolerance of the exact oracle
(``t_a`` and ``t_b``: the spec's, for the target's dtype and precision mode),
so two conforming outputs differ by at most ``t_a + t_b``; a pair's
"tolerance units" are ``max |a - b| / (t_a + t_b)`` (0 when both are
identical).  Targets are ``backend/device``, with ``/fast`` appended for the
fast precision mode; the CPU and GPU targets of one backend are compared like
any other pair.
"""

from __future__ import annotations

import json
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import spec
from spec import learning, numerics

RECORD_FORMAT = "conv-conformance-record/1"


class RecordError(RuntimeError):
    """A record is missing, truncated or not a record."""


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
        raise RecordError(f"{path}: not a {RECORD_FORMAT} record")
    npz = path.parent / meta.get("outputs", "")
    try:
        with np.load(npz, allow_pickle=False) as z:
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

    @property
    def disagreements(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.units > 1]

    @property
    def failures(self) -> list[dict]:
        return [r | {"backend": rec.backend} for rec in self.records for r in rec.meta["results"]
                if r["outcome"] == "failed"]

    @property
    def ok(self) -> bool:
        return not (self.problems or self.disagreements or self.failures)


def load(folder: Path, expect: list[str]) -> Report:
    report = Report([])
    for path in sorted(folder.glob("*.json")):
        try:
            report.records.append(read_record(path))
        except RecordError as exc:
            report.problems.append(str(exc))
    present = {r.backend for r in report.records}
    for name in expect:
        if name not in present:
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
    return spec.expectation(case, dtype, arith).tolerance


def compare(report: Report) -> None:
    groups: dict[tuple[str, str, str], dict[str, tuple[np.ndarray, str]]] = defaultdict(dict)
    for rec in report.records:
        for key, value in rec.outputs.items():
            case, what, device, dtype, *rest = key.split("|")
            precision = rest[0] if rest else "strict"
            name = f"{rec.backend}/{device}" + ("" if precision == "strict" else f"/{precision}")
            groups[case, what, dtype][name] = value, precision
    for (case, what, dtype), by_target in sorted(groups.items()):
        names = sorted(by_target)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                (A, pa), (B, pb) = by_target[a], by_target[b]
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


def build(folder: Path, expect: list[str]) -> Report:
    report = load(folder, expect)
    compare(report)
    return report
