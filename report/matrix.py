"""A matrix run: one name for every record that one run of the matrix writes.

``python -m report open DIR`` writes ``DIR/matrix.json`` with a fresh run id
and the time it was opened.  Every pytest session that writes records into
``DIR`` reads that file once, at its start, and stamps its records with the
run id; the agreement report compares only records stamped with the id in
``DIR/matrix.json`` and started after it was opened.  A record left by an
earlier run (an env whose install failed this time, so that its tests never
ran) carries another id and is refused by name.

The tox label ``cpu`` opens the run first (env ``open``); a CI system whose
jobs run on separate machines opens it once and hands the file to each job.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

MATRIX_FILE = "matrix.json"
MATRIX_FORMAT = "conv-conformance-matrix/1"


class MatrixError(RuntimeError):
    """``matrix.json`` is unreadable or not a matrix file."""


def now() -> tuple[float, str]:
    """The time as seconds since the epoch and as an ISO 8601 string (UTC)."""
    t = time.time()
    return t, datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")


def open_run(folder: Path, expect: list[str] | None = None) -> dict:
    """Open a new matrix run in ``folder`` (created if needed); return its description."""
    folder.mkdir(parents=True, exist_ok=True)
    ts, iso = now()
    matrix = {"format": MATRIX_FORMAT, "run_id": uuid.uuid4().hex, "opened": iso, "opened_ts": ts,
              "expect": list(expect or [])}
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{MATRIX_FILE}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(matrix, f, indent=1)
    os.chmod(tmp, 0o644)
    os.replace(tmp, folder / MATRIX_FILE)
    return matrix


def read_run(folder: Path) -> dict | None:
    """The matrix run opened in ``folder``, or ``None`` when none was."""
    path = folder / MATRIX_FILE
    if not path.exists():
        return None
    try:
        matrix = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MatrixError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from exc
    if not isinstance(matrix, dict) or matrix.get("format") != MATRIX_FORMAT or not isinstance(
            matrix.get("run_id"), str) or not isinstance(matrix.get("opened_ts"), (int, float)):
        raise MatrixError(f"{path}: not a {MATRIX_FORMAT} file (open a run with: python -m report open {folder})")
    return matrix
