"""The spec itself: its files are what ``spec.build`` writes, its expected
values are the oracle's and the book's, and the loader refuses bad data."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

import spec
from spec import build, learning, numerics, oracle


@pytest.mark.parametrize("name", spec.SECTIONS)
def test_committed_files_match_the_build(name):
    assert (spec.CASES_DIR / f"{name}.json").read_text() == build.render(name), (
        f"spec/cases/{name}.json differs from what `python -m spec.build` writes")


ALL = spec.all_cases()


@pytest.mark.parametrize("case", [c for c in ALL if c.kind == "correlation"], ids=lambda c: c.id)
def test_expected_is_the_exact_oracle(case):
    got = oracle.corr2d(case.input("X"), case.input("K"), case.bias or 0.0)
    np.testing.assert_array_equal(case.array("expected"), got)


def test_the_books_printed_values():
    by_id = {c.id: c for c in ALL}
    assert by_id["fig_7_2_1"].array("expected").tolist() == [[19, 25], [37, 43]]
    edge = np.zeros((6, 7))
    edge[:, 1], edge[:, 5] = 1, -1
    np.testing.assert_array_equal(by_id["edge_6x8"].array("expected"), edge)
    np.testing.assert_array_equal(by_id["edge_6x8_transposed"].array("expected"), np.zeros((8, 5)))
    # d2l-julia's answers section (shared/seeds/001_*.txt), exercises 1.1 and 1.3.
    np.testing.assert_array_equal(by_id["diagonal_edge_kernel"].array("expected")[:2],
                                  [[1, 0, 0, 0, -1], [-1, 1, 0, -1, 1]])
    np.testing.assert_array_equal(by_id["diagonal_transposed_kernel"].array("expected")[0], [1, -1, 0, 0, -1, 1])
    np.testing.assert_array_equal(by_id["second_derivative"].array("expected")[0], [1, 0, 0, 1, -1, 0])
    np.testing.assert_array_equal(by_id["third_derivative"].array("expected"), np.full((6, 3), 6.0))


def test_kernel_learning_derivation():
    case = spec.cases("learning_kernel")[0]
    X = case.input("X")
    A = learning.design_matrix(X, (1, 2))
    np.testing.assert_array_equal(A.T @ A, [[18, 12], [12, 18]])
    assert case.data["contraction"] == pytest.approx(0.8, abs=1e-12)
    ref = learning.replay(X, case.input("Y"), case.array("initial"), lr=case.data["lr"], steps=case.data["steps"])
    np.testing.assert_array_equal(ref.losses, case.array("expected", "losses"))
    # The mean of the squared errors contracts by 1 - 2*lr*6/42 per step at best: far outside 0.8.
    assert learning.contraction(X, (1, 2), case.data["lr"] / X[:, 1:].size) > 0.99


def test_error_model():
    assert numerics.gamma(4, "float32") == pytest.approx(4 * 2**-24, rel=1e-6)
    assert numerics.round_to(np.array([1 + 2**-9]), "bfloat16")[0] == 1.0
    assert numerics.round_to(np.array([1 + 3 * 2**-9]), "bfloat16")[0] == 1 + 2**-7
    fig = next(c for c in ALL if c.id == "fig_7_2_1")
    assert not spec.expectation(fig, "float32").tolerance.any()  # integers: no rounding at all
    rnd = next(c for c in ALL if c.id == "random_7x9_k3x3")
    t32, t64 = spec.expectation(rnd, "float32").tolerance, spec.expectation(rnd, "float64").tolerance
    assert np.all(t32 > 0) and np.all(t64 < t32 * 2**-28)


# -- the loader refuses bad data, naming file and case ------------------------


@pytest.fixture
def spec_copy(tmp_path):
    shutil.copytree(spec.CASES_DIR, tmp_path / "cases")
    return tmp_path / "cases"


def _edit(path, change):
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def _load(cases_dir):
    spec.load.cache_clear()
    try:
        return spec.load(str(cases_dir))
    finally:
        spec.load.cache_clear()


def test_malformed_json_is_refused(spec_copy):
    (spec_copy / "edge_detection.json").write_text('{"cases": [')
    with pytest.raises(spec.SpecError, match=r"edge_detection.json: not readable JSON"):
        _load(spec_copy)


@pytest.mark.parametrize("value, words", [("NaN", "NaN is not a number"), ("Infinity", "Infinity is not a number"),
                                          ("-Infinity", "-Infinity is not a number"), ("1e999", "1e999 overflows")])
def test_nan_and_inf_in_expected_values_are_refused(spec_copy, value, words):
    """A NaN expected value would pass any comparison written ``error > bound``: the loader refuses it."""
    path = spec_copy / "edge_detection.json"
    text = path.read_text()
    first = text.index('"expected"')
    number = re.search(r"-?\d+\.\d+", text[first:])
    path.write_text(text[:first + number.start()] + value + text[first + number.end():])
    with pytest.raises(spec.SpecError, match=re.escape(words)):
        _load(spec_copy)


def test_schema_violation_is_refused(spec_copy):
    _edit(spec_copy / "edge_detection.json", lambda d: d["cases"][0]["inputs"].pop("K"))
    with pytest.raises(spec.SpecError, match=r"edge_detection.json: case 'edge_6x8': schema violation"):
        _load(spec_copy)


def test_expected_shape_breaking_the_rule_is_refused(spec_copy):
    _edit(spec_copy / "edge_detection.json", lambda d: d["cases"][0]["expected"].pop())
    with pytest.raises(spec.SpecError, match=r"edge_detection.json::edge_6x8: expected output has shape \(5, 7\)"):
        _load(spec_copy)


def test_duplicate_case_id_is_refused(spec_copy):
    _edit(spec_copy / "exercises.json", lambda d: d["cases"][0].update(id="fig_7_2_1"))
    with pytest.raises(spec.SpecError, match=r"exercises.json::fig_7_2_1: duplicate case id"):
        _load(spec_copy)


def test_a_broken_spec_stops_the_suite_at_collection(tmp_path):
    """End to end: a copy of the suite whose spec repeats a case id runs no test at all."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for name in ("conftest.py", "pyproject.toml"):
        shutil.copy(root / name, tmp_path / name)
    for name in ("backends", "report", "spec", "tests"):
        shutil.copytree(root / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    _edit(tmp_path / "spec" / "cases" / "exercises.json", lambda d: d["cases"][0].update(id="fig_7_2_1"))
    result = subprocess.run([sys.executable, "-m", "pytest", "tests", "--ignore=tests/meta", "--backend=numpy",
                             "-p", "no:cacheprovider", "-q"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    said = result.stdout + result.stderr
    assert result.returncode in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.USAGE_ERROR), said[-2000:]
    assert "exercises.json::fig_7_2_1: duplicate case id" in said
    assert " passed" not in said


def test_the_run_order_names_every_test_module():
    """conftest.MODULE_ORDER (the chapter's order, which --first-failure's first failure follows) names every
    test module of the suite: a new module left out would run last, silently."""
    import conftest

    modules = sorted(p.stem for p in (spec.HERE.parent / "tests").glob("test_*.py"))
    assert sorted(conftest.MODULE_ORDER) == modules
