"""``conv-conformance``: the suite's tests on the adapters that ``--backend`` names, from anywhere.

    conv-conformance --backend=NAME [pytest options]     the conformance tests and the verdict
    conv-conformance 'tests/test_x.py::id' --backend=…   one test, by the id a verdict's reproduce line gives
    conv-conformance report DIR [--expect a,b] [--partial]  the agreement report over a results folder
    conv-conformance open DIR [--expect a,b]             open a matrix run in DIR
    conv-conformance where                               print the suite's version and where its tree lies
    conv-conformance repro NODEID [--backend=…] [-o FILE]  a failing check as a self-contained script

The conformance run is pytest on the suite's own tree (``conv_conformance.suite_root()``) with the
suite's own pytest configuration, whatever the current folder holds: its ``conftest.py``,
``pytest.ini`` or ``pyproject.toml`` take no part. Relative paths given in options (``--results-dir``,
``--xfails``, ``--junitxml``) are read from the current folder; so is pytest's cache
(``.pytest_cache``, for ``--lf``). A test id is given as ``tests/...``, as the reproduce lines print it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from conv_conformance import __version__, suite_root

#: The reproduce lines of a verdict start with this command when the run came through here.
RUNNER_ENV = "CONV_CONFORMANCE_RUNNER"


def pytest_args(argv: list[str], root: Path, cwd: Path) -> list[str]:
    """pytest's arguments for a conformance run of the tree at ``root``: its configuration, its
    ``tests`` unless test ids (``tests/...``) are given, and the cache in ``cwd``."""
    args, ids = [], []
    for a in argv:
        if a.startswith("tests/") or a == "tests":
            ids.append(str(root / a))
        else:
            args.append(a)
    return [
        "-c", str(root / "pyproject.toml"), "--rootdir", str(root),
        "-o", f"cache_dir={cwd / '.pytest_cache'}",
        *(ids or [str(root / "tests")]), *args,
    ]


def _report(argv: list[str]) -> int:
    """``report DIR ...`` or ``open DIR ...``: the suite's ``report`` package, on the tree's path."""
    root = str(suite_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    from report.__main__ import main as report_main  # importable only now, from the suite's tree

    return report_main(argv if argv[0] == "open" else argv[1:])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["-h"]:
        print(__doc__)
        print("pytest's options and the suite's own (--backend, --device, --precision, --results-dir, --xfails):\n"
              "    conv-conformance --help")
        return 0
    if argv[:1] == ["where"]:
        print(f"conv-conformance {__version__}: the suite's tree is {suite_root()}")
        return 0
    if argv[:1] in (["report"], ["open"]):
        return _report(argv)
    if argv[:1] == ["repro"]:
        from conv_conformance.repro import main as repro_main

        return repro_main(argv[1:])
    import pytest

    os.environ[RUNNER_ENV] = "conv-conformance"
    return int(pytest.main(pytest_args(argv, suite_root(), Path.cwd())))


__all__ = ["main", "pytest_args", "RUNNER_ENV"]
