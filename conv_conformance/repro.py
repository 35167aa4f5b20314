"""``conv-conformance repro NODEID [--backend=SPEC] [-o FILE]``: a failing (or known-deviation) check as a
self-contained script, for a bug report.

The check is run once, in this process, by pytest, with the verbs' calls and the result checks recorded:
the inputs handed to each verb (exactly, as float64 literals that round-trip), its parameters, and what
the suite expected of each result (the values and the elementwise tolerance, or an error).  The script
then repeats those calls through the adapter and compares, without pytest and without the suite: the
suite's modules the adapter needs (``backends.base``, the spec's NumPy definitions) travel inside it, as
source, and it imports no module of the suite's tree.  It exits 1 while the check fails the same way,
0 once it passes.

Errors are one line and exit 2: a node id that matches no test, a check that passes, a check whose
failure is not in a verb's result (a setting left changed, say), an adapter whose module cannot be named.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import sys
from pathlib import Path

import numpy as np

from conv_conformance import __version__, suite_root

#: Modules of the suite's tree that an adapter may import lazily and that its script then needs too:
#: the spec's definitions, NumPy only (``backends.base.general_geometry`` and its kin import them).
LAZY = ("spec.general", "spec.numerics")
#: Packages of the suite's tree: served empty in a script (their ``__init__`` imports everything).
PACKAGES = ("backends", "spec", "tests", "tests.meta")


class ReproError(RuntimeError):
    """What stops a reproduction, in one line."""


class Recorder:
    """A pytest plugin: records each verb call (support.call) and each result check (support.assert_conforms)
    of the one test that runs."""

    def __init__(self) -> None:
        self.steps: list[dict] = []
        self.outcome: str | None = None
        self.longrepr = ""
        self.target = None
        self.nodeids: list[str] = []

    def pytest_collection_finish(self, session) -> None:
        self.nodeids = [item.nodeid for item in session.items]

    def pytest_sessionstart(self, session) -> None:
        from tests import support

        original_call, original_assert = support.call, support.assert_conforms
        recorder = self

        def call(bk, verb, *args, expect_error=False, gap=False, **kwargs):
            inputs = {id(native): values for _, native, values in support._inputs(bk, verb, args, kwargs)}
            step = {"verb": verb, "args": [_arg(a, inputs) for a in args],
                    "kwargs": {k: _arg(v, inputs) for k, v in kwargs.items()}, "expect_error": expect_error,
                    "target": support.TARGET.get(None), "checks": []}
            recorder.steps.append(step)
            try:
                result = original_call(bk, verb, *args, expect_error=expect_error, gap=gap, **kwargs)
            except BaseException as exc:
                step["raised"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                raise
            step["result"] = result
            return result

        def assert_conforms(target, actual, expected, *, tolerance, what, **kwargs):
            record(actual, expected, tolerance, what)
            recorder.target = target
            return original_assert(target, actual, expected, tolerance=tolerance, what=what, **kwargs)

        def expecting(actual, expected, what):
            record(actual, expected, None, what)

        def record(actual, expected, tolerance, what):
            for step in reversed(recorder.steps):
                where = _locate(actual, step.get("result"))
                if where is not None:
                    expected = np.asarray(expected, dtype=np.float64).copy()
                    if tolerance is not None:
                        tolerance = np.broadcast_to(np.asarray(tolerance, dtype=np.float64), expected.shape).copy()
                    checks = [c for c in step["checks"] if c["where"] != where]  # the values' check replaces
                    step["checks"] = checks + [{"where": where, "what": what, "expected": expected,  # the shape's
                                                "tolerance": tolerance}]
                    return

        support.call, support.assert_conforms, support.expecting = call, assert_conforms, expecting

    def pytest_runtest_logreport(self, report) -> None:
        if report.when == "call" or report.failed:
            xfailed = hasattr(report, "wasxfail")
            outcome = "xfailed" if xfailed and report.skipped else report.outcome
            if self.outcome in (None, "passed") or outcome == "failed":
                self.outcome = outcome
            if report.failed or xfailed:
                self.longrepr = str(report.longrepr)


def _arg(value, inputs: dict):
    """An argument as the script writes it: an input array (``("array", values)``) or a plain value."""
    if id(value) in inputs:
        return ("array", np.array(inputs[id(value)]))
    if value is None or isinstance(value, int | float | str | bool | tuple | list | dict):
        return ("value", value)
    raise ReproError(f"a verb argument of type {type(value).__name__} cannot be written into a script")


def _locate(actual, result) -> str | None:
    """How a checked value is reached from a verb's result: '' (the result), '[i]', or '.name'."""
    if actual is result:
        return ""
    if isinstance(result, tuple):
        for i, item in enumerate(result):
            if actual is item:
                return f"[{i}]"
    for name in ("initial", "losses", "kernel"):
        if actual is getattr(result, name, object()):
            return f".{name}"
    return None


def _literal(a: np.ndarray) -> str:
    """``a`` as an exact literal: float64 values whose repr round-trips, NaN and infinities named."""
    flat = ", ".join("float('nan')" if np.isnan(v) else f"float('{'-' if v < 0 else ''}inf')" if np.isinf(v)
                     else repr(float(v)) for v in np.asarray(a, dtype=np.float64).ravel())
    return f"np.array([{flat}]).reshape({tuple(a.shape)!r})"


def _module_file(root: Path, name: str) -> Path | None:
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(source: str, name: str, top_level_only: bool) -> set[str]:
    """Module names a source imports (at module level only, or anywhere)."""
    tree = ast.parse(source)
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def embedded(module: str, root: Path) -> dict[str, tuple[str, str]]:
    """``{name: (source, original file)}``: the modules of the suite's tree that ``module`` needs, through
    its module-level imports, and the spec's definitions that ``backends.base`` imports when called."""
    todo, found = [module, *LAZY], {}
    while todo:
        name = todo.pop()
        path = _module_file(root, name)
        if name in found or path is None or name in PACKAGES:
            continue
        source = path.read_text(encoding="utf-8")
        found[name] = (source, str(path))
        todo += sorted(_imports(source, name, top_level_only=True))
    return found


def script(rec: Recorder, nodeid: str, backend_spec: str, root: Path) -> str:
    steps = [s for s in rec.steps if s["checks"] or s["expect_error"] or "raised" in s]
    if not steps:
        said = next((line.strip() for line in rec.longrepr.splitlines() if "Failed:" in line or "Error" in line),
                    rec.longrepr.strip().splitlines()[0] if rec.longrepr.strip() else "")
        raise ReproError(f"{nodeid}: its failure is not in the value of one verb's result (a learning trajectory, "
                         f"a setting, global state: this tool cannot replay it yet): {said[:300]}")
    target = steps[-1]["target"] or rec.target
    if target is None:
        raise ReproError(f"{nodeid}: no target (backend, device, dtype) to replay it on")
    bk = target.backend
    cls = type(bk)
    if getattr(cls, "selected_as", "").startswith("runner:") or cls.__module__ == "backends.runner":
        raise ReproError(f"{nodeid}: {bk.label} is a runner (docs/runners.md): rerun the check with "
                         f"conv-conformance '{nodeid}' --backend={backend_spec}")
    module = cls.__module__
    inside = _module_file(root, module) is not None
    vendored = embedded(module if inside else "backends.base", root)
    if not inside:  # the adapter's own package, installed or on PYTHONPATH: imported as it is
        for name in sorted(_imports(Path(sys.modules[module].__file__).read_text(), module, True)):
            vendored.update({k: v for k, v in embedded(name, root).items() if k not in vendored})
    precision = getattr(target, "precision", "strict")
    lines = [
        '"""Reproduction of a conv-conformance check, for a bug report.',
        "",
        f"check:   {nodeid}",
        f"adapter: {module}:{cls.__qualname__} (--backend={backend_spec}; label {bk.label})",
        f"target:  {target.device}, {target.dtype}, precision {precision}",
        f"suite:   conv-conformance {__version__}; its modules the adapter needs travel inside this file",
        "",
        "Run it where the adapter's framework is installed: python THIS_FILE.  It calls the adapter's verbs",
        "on the check's inputs (exact literals) and compares each result with what the suite expects (the",
        "exact result and its elementwise tolerance from the spec's error model).",
        "Exit 1 while the check fails this way, 0 once it passes.",
        '"""',
        "import importlib.abc",
        "import importlib.util",
        "import sys",
        "",
        "import numpy as np",
        "",
        "",
        "",
        "def main():",
        f"    from {module} import {cls.__qualname__.split('.')[0]} as Adapter",
        "",
        "    global bk",
        "    bk = Adapter()",
        "    bk.load()",
        "    failed.clear()",
        "    with bk.numerics(DEVICE, DTYPE, PRECISION):",
        "        steps()",
        "    print('FAILS:' if failed else 'passes', ', '.join(failed))",
        "    return 1 if failed else 0",
        "",
        "",
        f"DEVICE, DTYPE, PRECISION = {target.device!r}, {target.dtype!r}, {precision!r}",
        "bk = None",
        "failed = []",
        "",
        "",
        "def check(what, got, expected, tolerance):",
        "    device, dtype = bk.device_of(got), bk.dtype_of(got)",
        "    values = np.asarray(bk.to_numpy(got), dtype=np.float64)",
        "    print(f'{what}:')",
        "    if device != DEVICE or dtype != DTYPE:",
        "        failed.append(what)",
        "        print(f'  the result is {dtype} on {device}, but {DTYPE} on {DEVICE} was asked for')",
        "        return",
        "    if values.shape != expected.shape:",
        "        failed.append(what)",
        "        print(f'  shape {values.shape}, expected {expected.shape}')",
        "        return",
        "    if tolerance is None:  # the suite checked its shape only, before its values",
        "        print(f'  shape {values.shape}, as expected')",
        "        return",
        "    error = np.abs(values - expected)",
        "    outside = ~(error <= tolerance)  # NaN is outside every bound",
        "    print('  got:', values.tolist(), '\\n  expected:', expected.tolist(),",
        "          '\\n  tolerance:', tolerance.tolist())",
        "    if outside.any():",
        "        failed.append(what)",
        "        print(f'  {int(outside.sum())} of {values.size} values outside tolerance')",
        "",
        "",
        "def steps():",
        "    # The calls the check made, on its inputs; each result against what the suite expects.",
    ]
    body = []
    for n, step in enumerate(steps):
        def render(arg):
            kind, value = arg
            if kind == "array":
                return f"bk.asarray({_literal(value)}.astype({str(value.dtype)!r}), dtype=DTYPE, device=DEVICE)"
            return repr(value)
        call_args = ", ".join([render(a) for a in step["args"]]
                              + [f"{k}={render(v)}" for k, v in step["kwargs"].items()])
        body.append(f"# step {n + 1}: {step['verb']}")
        if step["expect_error"] and not step["checks"]:
            body += ["try:", f"    bk.{step['verb']}({call_args})",
                     f"    failed.append({step['verb']!r})",
                     f"    print({step['verb'] + ': returned a result where the spec says this is an error'!r})",
                     "except Exception as exc:",
                     f"    print({step['verb'] + ': raised, as the spec asks:'!r}, type(exc).__name__, exc)"]
            continue
        body += ["try:", f"    result = bk.{step['verb']}({call_args})", "except Exception as exc:",
                 f"    failed.append({step['verb']!r})",
                 f"    print({step['verb'] + ' raised:'!r}, type(exc).__name__, exc)", "else:"]
        for c in step["checks"]:
            tolerance = "None" if c["tolerance"] is None else _literal(c["tolerance"])
            if c["tolerance"] is None:
                body.append("    # the suite stopped at this result's shape: no tolerance was computed")
            body.append(f"    check({c['what']!r}, result{c['where']}, {_literal(c['expected'])},")
            body.append(f"          {tolerance})")
        if not step["checks"]:
            body.append("    pass")
    lines += ["    " + line if line else "" for line in body]
    lines += ["", "", "# The suite's modules the adapter imports, as they were when this script was written: served",
              "# from here, never imported from the suite's tree.", "SOURCES = {"]
    for name, (source, origin) in sorted(vendored.items()):
        lines.append(f"    {name!r}: ({source!r}, {origin!r}),")
    lines += [
        "}",
        f"PACKAGES = {PACKAGES!r}",
        "",
        "",
        "class _Embedded(importlib.abc.MetaPathFinder, importlib.abc.Loader):",
        "    def find_spec(self, name, path=None, target=None):",
        "        if name in SOURCES or name in PACKAGES:",
        "            return importlib.util.spec_from_loader(name, self, is_package=name in PACKAGES)",
        "        return None",
        "",
        "    def create_module(self, spec):",
        "        return None",
        "",
        "    def exec_module(self, module):",
        "        if module.__name__ in SOURCES:",
        "            source, origin = SOURCES[module.__name__]",
        "            module.__file__ = origin  # for data files it reads beside itself; the code is the one above",
        "            exec(compile(source, origin, 'exec'), module.__dict__)",
        "",
        "",
        "if __name__ == '__main__':",
        "    sys.meta_path.insert(0, _Embedded())",
        "    sys.exit(main())",
        "",
    ]
    text = "\n".join(lines)
    compile(text, "<the reproduction script>", "exec")  # a script that does not parse is this tool's bug
    return text


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="conv-conformance repro", description=__doc__.splitlines()[0])
    parser.add_argument("nodeid", help="the check's test id, as a verdict's reproduce line prints it (tests/...)")
    parser.add_argument("--backend", default=None, help="as the run had it (default: the one in the id's target)")
    parser.add_argument("-o", "--output", default=None, help="write the script here (default: standard output)")
    parser.add_argument("--xfails", default=None, help="the known-deviation lists' folder, as the run had it")
    args = parser.parse_args(argv)
    try:
        text = _reproduce(args.nodeid, args.backend, args.xfails)
    except ReproError as exc:
        print(f"conv-conformance repro: {exc}", file=sys.stderr)
        return 2
    if args.output:
        Path(args.output).write_text(text)
        print(f"conv-conformance repro: wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _reproduce(nodeid: str, backend: str | None, xfails: str | None) -> str:
    import pytest

    from conv_conformance.cli import pytest_args

    root = suite_root()
    if not nodeid.startswith("tests/") or "::" not in nodeid:
        raise ReproError(f"{nodeid!r} is not a test id: give one as a verdict's reproduce line prints it "
                         "(tests/test_x.py::test_y[...])")
    if not (root / nodeid.partition("::")[0]).is_file():
        raise ReproError(f"{nodeid}: no such test file in the suite ({root})")
    if backend is None:
        inside = nodeid.partition("[")[2]
        backend = inside.split("-")[0] if inside else None
        if not backend:
            raise ReproError(f"{nodeid}: name the backend with --backend (the id names no target)")
    rec = Recorder()
    options = [nodeid, f"--backend={backend}", "-q", "--no-header", "-p", "no:xdist"]
    if xfails:
        options.append(f"--xfails={xfails}")
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(out):
        code = pytest.main(pytest_args(options, root, Path.cwd()), plugins=[rec])
    if "ERROR: not found:" in out.getvalue():
        raise ReproError(f"{nodeid}: no such test (with --backend={backend}); a verdict's reproduce line or "
                         "pytest --collect-only lists the ids")
    if code in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR):
        said = [line for line in out.getvalue().splitlines() if "ERROR" in line or "rror" in line]
        raise ReproError(f"the suite could not run {nodeid} with --backend={backend}: "
                         f"{(said or ['exit status ' + str(int(code))])[-1].strip()[:300]}")
    if nodeid not in rec.nodeids:
        raise ReproError(f"{nodeid}: no such test (with --backend={backend}); a verdict's reproduce line or "
                         "pytest --collect-only lists the ids")
    if rec.outcome not in ("failed", "xfailed"):
        raise ReproError(f"{nodeid}: the check {rec.outcome or 'did not run'} with --backend={backend}: there is "
                         "nothing to reproduce")
    return script(rec, nodeid, backend, root)


__all__ = ["main", "embedded", "script"]
