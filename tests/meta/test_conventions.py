"""The general convolution (spec/general.py): its oracle against values measured on the frameworks
(independent of the oracle's code), its spec file against its schema and its definition, and
conventions declared unsupported: confirmed by an error, an unexpected pass when they conform, a
failure when the number is wrong."""

from __future__ import annotations

import inspect
import json
import re

import numpy as np
import pytest

import spec
from spec import general
from tests import support
from tests.meta.test_broken_adapters import ROOT, outcome, run_suite

X4 = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)
X5 = np.arange(1.0, 26.0).reshape(1, 1, 5, 5)
K2 = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
K3 = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
X9 = (9.0 * np.arange(9)[:, None] + np.arange(9)[None, :]).reshape(1, 1, 9, 9)
KD = np.zeros((1, 1, 3, 3))
KD[0, 0, 0, 0], KD[0, 0, 2, 2] = 1.0, 10.0

#: Outputs measured on torch 2.13, TF 2.21, JAX 0.10.2 and MXNet 1.9.1 (../shared/research/conv-conventions.md,
#: section 1-3 and its proposed cases), written out here by hand: the oracle must reproduce them.
MEASURED = [
    ("same, extra pixel at the end", X4, K2, {"padding": "same"},
     [[44, 54, 64, 28], [84, 94, 104, 44], [124, 134, 144, 60], [41, 44, 47, 16]]),
    ("same_lower", X4, K2, {"padding": "same_lower"},
     [[4, 11, 18, 25], [22, 44, 54, 64], [46, 84, 94, 104], [70, 124, 134, 144]]),
    ("same, stride 2, 5x5", X5, K3, {"padding": "same", "stride": (2, 2)},
     [[128, 241, 184], [441, 681, 453], [320, 457, 280]]),
    ("same, stride 2, 4x4", X4, K3, {"padding": "same", "stride": (2, 2)}, [[348, 252], [274, 175]]),
    ("same, dilation 2", X4, K2, {"padding": "same", "dilation": (2, 2)},
     [[24, 43, 50, 21], [44, 78, 88, 36], [68, 118, 128, 52], [20, 31, 34, 11]]),
    ("explicit (1, 0), (0, 2)", X4, K2, {"padding": ((1, 0), (0, 2))},
     [[11, 18, 25, 12, 0], [44, 54, 64, 28, 0], [84, 94, 104, 44, 0], [124, 134, 144, 60, 0]]),
    ("reflect 1", X4, K3, {"padding": ((1, 1), (1, 1)), "padding_mode": "reflect"},
     [[195, 216, 261, 270], [327, 348, 393, 402], [507, 528, 573, 582], [495, 516, 561, 570]]),
    ("replicate 1", X4, K3, {"padding": ((1, 1), (1, 1)), "padding_mode": "replicate"},
     [[159, 192, 237, 264], [315, 348, 393, 420], [495, 528, 573, 600], [579, 612, 657, 684]]),
    ("circular 1, stride 2", X4, K3, {"padding": ((1, 1), (1, 1)), "padding_mode": "circular", "stride": (2, 2)},
     [[267, 309], [531, 573]]),
    ("dilation 2, stride 2", X9, KD, {"dilation": (2, 2), "stride": (2, 2)},
     [[400, 422, 444], [598, 620, 642], [796, 818, 840]]),
]


@pytest.mark.parametrize("name, X, K, params, measured", MEASURED, ids=[m[0] for m in MEASURED])
def test_the_oracle_gives_the_measured_values(name, X, K, params, measured):
    full = {**{"stride": (1, 1), "dilation": (1, 1), "padding": "valid", "padding_mode": "zeros", "groups": 1},
            **params}
    assert general.conv(X, K, **full)[0, 0].tolist() == measured


def test_the_oracle_gives_the_measured_channels_and_gradients():
    X = np.stack([np.arange(9.0).reshape(3, 3), np.arange(1.0, 10.0).reshape(3, 3)])[None]
    K = np.stack([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])[None]
    assert general.conv(X, K)[0, 0].tolist() == [[56, 72], [104, 120]]  # d2l 7.4.1
    stack = general.conv(X, np.concatenate([K, K + 1, K + 2]))[0].tolist()
    assert stack == [[[56, 72], [104, 120]], [[76, 100], [148, 172]], [[96, 128], [192, 224]]]  # d2l 7.4.2
    params = {"stride": (1, 1), "dilation": (1, 1), "padding": "valid", "padding_mode": "zeros", "groups": 1}
    dX, dK = general.vjp(np.arange(1.0, 10.0).reshape(1, 1, 3, 3), K2, np.ones((1, 1, 2, 2)), **params)
    assert dX[0, 0].tolist() == [[1, 3, 2], [4, 10, 6], [3, 7, 4]] and dK[0, 0].tolist() == [[12, 16], [24, 28]]
    dX, _ = general.vjp(X5, K2, np.ones((1, 1, 2, 2)), **{**params, "stride": (2, 2)})
    assert dX[0, 0].tolist() == [[1, 2, 1, 2, 0], [3, 4, 3, 4, 0], [1, 2, 1, 2, 0], [3, 4, 3, 4, 0], [0] * 5]
    _, dK = general.vjp(np.ones((1, 24, 6, 6)), np.ones((24, 1, 3, 3)), np.ones((1, 24, 3, 3)),
                        **{**params, "stride": (2, 2), "padding": ((1, 1), (1, 1)), "groups": 24})
    assert all(dK[c, 0].tolist() == [[4, 6, 6], [6, 9, 9], [6, 9, 9]] for c in range(24))  # pytorch#50042


def test_the_gradient_is_the_adjoint_of_the_convolution():
    """<dY, conv(X)> = <vjp_X(dY), X> and = <vjp_K(dY), K>, in every padding mode: the oracle's two halves
    agree with each other (a convolution is bilinear)."""
    rng = np.random.default_rng(7)
    X = rng.integers(-3, 4, (2, 4, 5, 6)).astype(float)
    K = rng.integers(-3, 4, (6, 2, 3, 2)).astype(float)
    for mode in general.PADDING_MODES:
        params = {"stride": (2, 1), "dilation": (1, 2), "padding": ((1, 2), (2, 1)), "padding_mode": mode,
                  "groups": 2}
        Y = general.conv(X, K, **params)
        dY = rng.integers(-3, 4, Y.shape).astype(float)
        dX, dK = general.vjp(X, K, dY, **params)
        assert np.sum(dY * Y) == np.sum(dK * K), mode
        if mode == "zeros":  # linear in X only where the padding adds nothing but zeros
            assert np.sum(dY * Y) == np.sum(dX * X)


def test_the_schema_names_the_conventions_spec_general_defines():
    schema = json.loads(spec.SCHEMA_PATH.read_text())
    assert schema["$defs"]["conventions"]["items"]["enum"] == list(general.CONVENTIONS)
    assert schema["$defs"]["params"]["properties"]["padding_mode"]["enum"] == list(general.PADDING_MODES)


def test_every_convention_and_every_error_rule_has_a_case():
    cases = spec.cases("conventions")
    used = {c for case in cases for c in case.data["conventions"]}
    assert used == set(general.CONVENTIONS), set(general.CONVENTIONS) - used
    rules = {"reflect padding": "a pad too large for its mode", "negative padding": "a negative pad",
             "must divide both channel counts": "groups that do not divide", "larger than the padded input":
             "a kernel larger than the padded input"}
    said = " | ".join(case.data["error"] for case in cases if case.kind == "general_error")
    assert [why for words, why in rules.items() if words not in said] == [], said


def test_a_general_case_whose_expected_shape_breaks_the_definition_is_refused(tmp_path):
    doc = json.loads((spec.CASES_DIR / "conventions.json").read_text())
    doc["cases"][1]["expected"][0][0].pop()
    path = tmp_path / "conventions.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(spec.SpecError, match=r"same_even_upper: expected has shape \(1, 1, 3, 4\), but the "
                                              r"definition gives \(1, 1, 4, 4\)"):
        for case in spec.load_file(path):
            spec._check_shapes(case)


def test_an_error_case_whose_parameters_are_valid_is_refused(tmp_path):
    doc = json.loads((spec.CASES_DIR / "conventions.json").read_text())
    bad = next(c for c in doc["cases"] if c["id"] == "negative_padding")
    bad["params"]["padding"] = [[1, 0], [0, 0]]
    path = tmp_path / "conventions.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(spec.SpecError, match="negative_padding: expects an error, but the parameters are valid"):
        for case in spec.load_file(path):
            spec._check_shapes(case)


H = "tests.meta.hostile"


def test_a_convention_declared_unsupported_that_raises_is_a_skip_that_says_so():
    result = run_suite(f"{H}:CircularUnsupported", "-k", "conv_general")
    counts = outcome(result)
    assert "failed" not in counts and counts.get("skipped") == 6, result.stdout[-3000:]
    assert ("unsupported, as the adapter declares: circular (unsupported: no wrap mode in this framework); "
            "CircularUnsupported.conv_general raised NotImplementedError: circular padding") in result.stdout


@pytest.mark.parametrize("workers", [(), ("-p", "xdist", "-n", "2")], ids=["one process", "xdist"])
def test_a_whole_run_with_a_declared_gap_is_conformant_also_under_xdist(workers):
    """The declared gap's skips are documented ones, also where xdist takes them in its workers and the
    verdict is drawn in the controller (found by the fresh-clone CI run: MXNet's channels-last gap)."""
    result = run_suite(f"{H}:CircularUnsupported", *workers)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "verdict: CircularUnsupported: CONFORMANT" in result.stdout and "unsupported (declared)" in result.stdout


#: The words by which the verdict recognizes the harness's own skips (tests/verdict.py: skip_kind).
HARNESS_WORDS = (support.NOT_IMPLEMENTED, support.UNSUPPORTED, support.MANIFEST_SAYS, support.KNOWN_DEVIATION,
                 support.LEFT_TO_FIXED, support.STOPPED)


@pytest.mark.parametrize("words", sorted(HARNESS_WORDS))
def test_a_skip_in_the_harness_words_that_the_harness_did_not_take_fails(words):
    """Every prefix by which the verdict recognizes the harness's own skips (tests/verdict.py: skip_kind)."""
    result = run_suite(f"{H}:SkipsInTheHarnessWords", "-p", "xdist", "-n", "2", "-k", "fig_7_2_1 and conv2d",
                       env_extra={"CONV_META_SKIP_WORDS": words})
    assert result.returncode == 1, result.stdout[-3000:]
    assert f"pytest.skip({words + ': valid (it says so itself)'!r}) was called" in result.stdout, result.stdout[-3000:]


def test_every_skip_word_the_verdict_reads_is_tried_above():
    """A new prefix in skip_kind without a hostile run behind it would be a door nobody tried."""
    from tests import verdict

    source = inspect.getsource(verdict.skip_kind)
    assert set(re.findall(r"support\.([A-Z_]+)\)", source)) == {name for name, value in vars(support).items()
                                                                 if value in HARNESS_WORDS}


def test_a_convention_declared_unsupported_that_conforms_is_an_unexpected_pass():
    result = run_suite(f"{H}:CircularUnsupportedButWorks")
    assert result.returncode == 0 and "verdict: CircularUnsupportedButWorks: CONFORMANT" in result.stdout, \
        result.stdout[-3000:]
    assert re.search(r"unexpected pass: CircularUnsupportedButWorks-cpu-\w+: circular_stride2 conforms, though the "
                     r"adapter declares circular unsupported", result.stdout), result.stdout[-3000:]


def test_a_convention_declared_unsupported_with_a_wrong_number_fails():
    result = run_suite(f"{H}:CircularUnsupportedButWrong", "-k", "conv_general")
    assert result.returncode == 1 and "zeros padding where circular is meant" in result.stdout, result.stdout[-3000:]


def test_the_report_shows_the_conventions_table(tmp_path):
    from tests.meta.sealing import conformance, open_run, report

    open_run(tmp_path, "numpy,CircularUnsupported")
    for backend in ("numpy", f"{H}:CircularUnsupported"):
        result = conformance(f"--backend={backend}", f"--results-dir={tmp_path}")
        assert result.returncode == 0, result.stdout[-3000:]
    out = report(tmp_path).stdout
    row = next(line for line in out.splitlines() if line.startswith("| circular |"))
    assert re.fullmatch(r"\| circular \| unsupported; 6 skipped \| native; \d+ passed \|", row), row
    assert "| CircularUnsupported | circular | unsupported: no wrap mode in this framework |" in out
    assert (ROOT / "spec" / "general.py").is_file()


#: Transposed convolutions measured on torch, TF, MXNet and lax with transpose_kernel=True (research file, 5).
MEASURED_TRANSPOSE = [
    ("scatter, stride 1", np.ones((1, 1, 2, 2)) * [[1, 2], [3, 4]], {}, [[1, 4, 4], [6, 20, 16], [9, 24, 16]]),
    ("scatter, stride 2", np.ones((1, 1, 2, 2)) * [[1, 2], [3, 4]], {"stride": (2, 2)},
     [[1, 2, 2, 4], [3, 4, 6, 8], [3, 6, 4, 8], [9, 12, 12, 16]]),
]


@pytest.mark.parametrize("name, K, params, measured", MEASURED_TRANSPOSE, ids=[m[0] for m in MEASURED_TRANSPOSE])
def test_the_transpose_oracle_gives_the_measured_values(name, K, params, measured):
    X = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    assert general.conv_transpose(X, K, **general.transpose_params_of(params))[0, 0].tolist() == measured


def test_the_two_upsampling_conventions_keep_different_rows():
    """k3 s2 on 2x2 -> 4x4: TF 'SAME' / ONNX SAME_UPPER keep rows 0..3 of the 5x5 full result, torch
    (padding 1, output_padding 1) and MXNet (pad 1, adj 1) rows 1..4 (research file, case 25)."""
    X, K = np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), np.ones((1, 1, 3, 3))
    full = [[1, 1, 3, 2, 2], [1, 1, 3, 2, 2], [4, 4, 10, 6, 6], [3, 3, 7, 4, 4], [3, 3, 7, 4, 4]]
    assert general.conv_transpose(X, K, stride=(2, 2))[0, 0].tolist() == full
    same = general.conv_transpose(X, K, stride=(2, 2), padding="same")[0, 0].tolist()
    torch_way = general.conv_transpose(X, K, stride=(2, 2), padding=((1, 1), (1, 1)), output_padding=(1, 1))
    assert same == [row[:4] for row in full[:4]]
    assert torch_way[0, 0].tolist() == [row[1:] for row in full[1:]]


def test_the_transposed_convolution_is_the_convolution_gradient():
    """For random integer data, strides, dilations and pads: conv_transpose(dY, K) cropped by the pads is
    the exact dX of sum(conv(X, K) * dY) (the adjoint identity, d2l 14.10.3)."""
    rng = np.random.default_rng(11)
    for _ in range(12):
        s, d = tuple(rng.integers(1, 4, 2)), tuple(rng.integers(1, 3, 2))
        k = tuple(rng.integers(1, 4, 2))
        n = tuple(int(rng.integers(d_ * (k_ - 1) + 1, 9)) for d_, k_ in zip(d, k, strict=True))
        pads = tuple((int(rng.integers(0, 2)), int(rng.integers(0, 2))) for _ in range(2))
        X = rng.integers(-3, 4, (2, 3, *n)).astype(float)
        K = rng.integers(-3, 4, (4, 3, *k)).astype(float)
        params = {"stride": s, "dilation": d, "padding": pads, "padding_mode": "zeros", "groups": 1}
        Y = general.conv(X, K, **params)
        dY = rng.integers(-3, 4, Y.shape).astype(float)
        dX, _ = general.vjp(X, K, dY, **params)
        rest = tuple((n_ + lo + hi - d_ * (k_ - 1) - 1) % s_ for n_, (lo, hi), k_, s_, d_
                     in zip(n, pads, k, s, d, strict=True))
        got = general.conv_transpose(dY, K, stride=s, dilation=d, padding=pads, output_padding=rest)
        assert np.array_equal(got, dX), (s, d, k, n, pads)


def test_declared_flushing_of_subnormals_conforms_and_a_wrong_declaration_is_reported():
    result = run_suite(f"{H}:FlushesSubnormalsDeclared", "-k", "subnormal")
    assert result.returncode == 0 and "failed" not in outcome(result), result.stdout[-3000:]
    result = run_suite(f"{H}:DeclaresFlushButKeeps", "-k", "subnormal")
    assert result.returncode == 0, result.stdout[-3000:]
    assert ("DeclaresFlushButKeeps-cpu-float32: subnormal_inputs keeps subnormals, though the adapter declares them "
            "flushed in this dtype (flushes_subnormals)") in result.stdout, result.stdout[-3000:]


def test_flushing_declared_for_an_undeclared_dtype_is_a_usage_error():
    result = run_suite(f"{H}:FlushesAnUndeclaredDtype")
    assert result.returncode == 4 and "flushes_subnormals must be {device: (dtype, ...)} naming declared" in \
        result.stderr, result.stderr[-2000:]


def test_every_known_wrong_combination_is_shown_by_a_listed_fixed_case():
    """An adapter's known_wrong combinations (which generated cases keep away from) are each shown by a
    fixed case whose conventions include them, listed in that adapter's known-deviation file with the
    same upstream link: a known bug is seen in the matrix, never hidden inside a property."""
    import backends
    from tests.deviations import DEFAULT_DIR

    cases = spec.cases("conventions")
    checked = 0
    for name in backends.builtin_names():
        cls = backends.resolve(name)
        for combo, link in cls.known_wrong:
            shown = [c.id for c in cases if combo <= set(c.data["conventions"])]
            listed = (DEFAULT_DIR / f"{name}.txt").read_text() if (DEFAULT_DIR / f"{name}.txt").is_file() else ""
            assert shown and any(f"-{case_id}]" in listed for case_id in shown), (name, sorted(combo), shown)
            assert link in listed, (name, link)
            checked += 1
    assert checked >= 2
