"""How much one check costs, per backend, against pytest's own bare per-test overhead.

Not a timed test: a measurement to read (issue 14's budget).  For each backend it runs, in that
backend's own environment (``.tox/<backend>/bin/python`` unless ``--python B=PATH`` says otherwise):

* pytest on a throw-away file of ``--bare`` parametrized tests that do nothing, with the same
  plugins and options as the suite: the per-test overhead of pytest itself in that environment;
* the suite on the CPU in both precision modes, one process (no xdist, so that the times add up),
  with a JUnit XML file whose per-test times it sums by group: the chapter's cases (7.2), the
  conventions beyond it (7.3-7.5, 14.10) and the generated properties.

Each measurement runs ``--repeat`` times; the table gives the median and the spread (min-max).
Usage::

    python tools/benchmark.py                      # every backend with a tox env here
    python tools/benchmark.py --backends numpy,jax --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("numpy", "torch", "jax", "tensorflow", "mxnet", "keras-torch", "keras-jax", "keras-tensorflow", "paddle",
            "tinygrad", "mlx", "onnxruntime")
GROUPS = {"test_conventions": "conventions", "test_generated": "generated"}  # the rest: the chapter
OPTIONS = ["-p", "no:cacheprovider", "-q"]


def _bare(python: str, n: int) -> float:
    """Seconds per test of ``n`` parametrized no-op tests, less the cost of collecting none."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "test_bare.py")
        path.write_text("import pytest\n\n\n@pytest.mark.parametrize('i', range(int(__import__('os').environ"
                        "['BARE_N'])))\ndef test_nothing(i):\n    pass\n")
        times = []
        for count in (n, 0):
            start = time.perf_counter()
            subprocess.run([python, "-m", "pytest", str(path), *OPTIONS], cwd=folder, capture_output=True,
                           env={**os.environ, "BARE_N": str(count)}, check=count == 0 or None)
            times.append(time.perf_counter() - start)
    return (times[0] - times[1]) / n


def _suite(python: str, backend: str) -> dict:
    """Wall time of one process and the per-group sums of the JUnit per-test times."""
    with tempfile.TemporaryDirectory() as folder:
        junit = Path(folder, "junit.xml")
        start = time.perf_counter()
        result = subprocess.run([python, "-m", "pytest", "tests", "--ignore=tests/meta", f"--backend={backend}",
                                 "--device=cpu", "--precision=all", f"--results-dir={folder}",
                                 f"--junitxml={junit}", *OPTIONS], cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if result.returncode != 0:
            sys.exit(f"{backend}: the suite failed (exit {result.returncode}):\n{result.stdout[-2000:]}")
        groups: dict[str, list[float]] = {"chapter": [], "conventions": [], "generated": []}
        for case in ET.parse(junit).getroot().iter("testcase"):
            if case.find("skipped") is not None:
                continue
            module = case.get("classname", "").rsplit(".", 1)[-1]
            groups[GROUPS.get(module, "chapter")].append(float(case.get("time", 0)))
    return {"wall": wall, **{g: (len(t), sum(t)) for g, t in groups.items()}}


def _spread(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    med = statistics.median(values) * scale
    if len(values) == 1:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} ({min(values) * scale:.{digits}f}-{max(values) * scale:.{digits}f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--python", action="append", default=[], metavar="BACKEND=PATH",
                        help="the interpreter of a backend's environment (default .tox/<backend>/bin/python)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--bare", type=int, default=2000, help="no-op tests for pytest's own overhead")
    args = parser.parse_args(argv)
    pythons = dict(item.split("=", 1) for item in args.python)
    rows = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        python = pythons.get(backend, str(ROOT / ".tox" / backend / "bin" / "python"))
        if not Path(python).exists():
            sys.exit(f"{backend}: no interpreter at {python} (create the env: tox -e {backend} --notest)")
        bare = [_bare(python, args.bare) for _ in range(args.repeat)]
        runs = [_suite(python, backend) for _ in range(args.repeat)]
        per = {g: [r[g][1] / max(r[g][0], 1) for r in runs] for g in ("chapter", "conventions", "generated")}
        rows.append((backend, runs[0]["chapter"][0] + runs[0]["conventions"][0] + runs[0]["generated"][0],
                     _spread([r["wall"] for r in runs]), _spread(bare, 1e3, 2), _spread(per["chapter"], 1e3),
                     _spread([c / b for c, b in zip(per["chapter"], bare, strict=True)]),
                     _spread(per["conventions"], 1e3), _spread(per["generated"], 1e3, 0)))
    header = ("backend", "checks run", "wall s (one process)", "bare pytest ms/test", "chapter ms/check",
              "chapter / bare", "conventions ms/check", "generated ms/property")
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    print(f"\n{args.repeat} run(s) each; median (min-max). Python {sys.version.split()[0]}, {os.cpu_count()} CPUs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
