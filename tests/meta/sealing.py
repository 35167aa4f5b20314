"""Helpers of the sealed-run meta-tests: the suite and the report in subprocesses, records read back."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

from tests.meta.test_broken_adapters import ROOT

H = "tests.meta.hostile"


def pytest_run(*args: str, env: dict | None = None, cwd=ROOT) -> subprocess.CompletedProcess:
    """The suite in a subprocess, with the options given and nothing else of ours."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CONV_CONFORMANCE_", "CC_META_"))}
    base["CONV_CONFORMANCE_SHRINK"] = "0"  # a failing generated property is reported as drawn: no shrinking cost
    return subprocess.run([sys.executable, "-m", "pytest", *args], cwd=cwd, env=base | (env or {}),
                          capture_output=True, text=True, timeout=600)


def conformance(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return pytest_run(str(ROOT / "tests"), "--ignore", str(ROOT / "tests" / "meta"), "--device=cpu", "-q",
                      "--tb=line", "-p", "no:cacheprovider", *args, env=env)


def report(folder, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "report", str(folder), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def open_run(folder, expect: str = "numpy") -> str:
    opened = subprocess.run([sys.executable, "-m", "report", "open", str(folder), "--expect", expect], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert opened.returncode == 0, opened.stderr
    return json.loads((folder / "matrix.json").read_text())["run_id"]


def record(folder, backend: str = "numpy") -> dict:
    return json.loads((folder / f"{backend}.json").read_text())


def verdict_line(result, backend: str = "numpy") -> str:
    m = re.search(rf"verdict: {re.escape(backend)}: ([A-Z ]+[A-Z])", result.stdout)
    return m.group(1) if m else ""


def says_agree(out: str) -> bool:
    return re.search(r"^(\*\*)?AGREE", out, re.M) is not None


def assert_refused(folder, expect: str = "numpy", *words: str) -> str:
    merged = report(folder, "--expect", expect)
    out = merged.stdout + merged.stderr
    assert merged.returncode == 1, out[-3000:]
    assert not says_agree(out) and "Traceback" not in out, out[-3000:]
    for w in words:
        assert w in out, f"{w!r} not in the report:\n{out[-3000:]}"
    return out


def signal_mid_run(backend: str, folder, sig: int, *, after: float, timeout: int) -> tuple[int, str]:
    """Start the suite on ``backend``, writing records into ``folder``; send ``sig`` after ``after``
    seconds (an op of the backend hangs by then); return the exit status and the output."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", str(ROOT / "tests"), "--ignore", str(ROOT / "tests" / "meta"),
         f"--backend={backend}", "--device=cpu", "-p", "no:cacheprovider", "-q", f"--results-dir={folder}",
         f"--timeout={timeout}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(after)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, out
