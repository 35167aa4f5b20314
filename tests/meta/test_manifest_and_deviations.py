"""The capability manifest is checked both ways, and the known-deviation lists
(``spec/xfails``) match exactly, refuse stale or malformed entries, and report
an xfail that passes."""

from __future__ import annotations

import re

import pytest

from tests.meta.test_broken_adapters import outcome, run_suite

H = "tests.meta.hostile"

FLIPPED_EDGE = "tests/test_edge_detection.py::test_edge_detection[FlippedKernel-cpu-float32-edge_6x8-conv2d]"
NUMPY_EDGE = "tests/test_edge_detection.py::test_edge_detection[numpy-cpu-float32-edge_6x8-conv2d]"


def test_undeclared_verb_that_conforms_is_an_unexpected_pass():
    result = run_suite("tests.meta.broken:UndeclaredVerb")
    assert result.returncode == 0, result.stdout[-2000:]
    assert "unexpected pass: UndeclaredVerb.receptive_field is not in the manifest (verbs)" in result.stdout


def test_undeclared_dtype_that_conforms_is_an_unexpected_pass():
    result = run_suite("tests.meta.broken:UndeclaredDtype")
    assert result.returncode == 0, result.stdout[-2000:]
    for dtype in ("float16", "float64"):
        assert (f"unexpected pass: UndeclaredDtype-cpu-{dtype}: {dtype} on cpu is not in the manifest (dtypes)"
                in result.stdout)
    # NumPy has no bfloat16: the probe says so, in the verdict.
    assert "manifest probe: UndeclaredDtype-cpu-bfloat16: bfloat16 on cpu confirmed unsupported" in result.stdout


def test_a_verb_held_in_fewer_dtypes_skips_with_the_manifest_word_and_is_probed():
    """verb_dtypes = {"conv2d": ("float32",)} on an adapter whose conv2d works in every dtype: the
    conv2d checks in float16 and float64 skip, saying so; the probes find that it conforms there."""
    result = run_suite("tests.meta.broken:UndeclaredVerbDtype", "-rs")
    assert result.returncode == 0, result.stdout[-2000:]
    assert "verdict: UndeclaredVerbDtype: CONFORMANT" in result.stdout
    for dtype in ("float16", "float64"):
        assert (f"not in the manifest: UndeclaredVerbDtype.conv2d is declared in float32 only (verb_dtypes), "
                f"not {dtype}") in result.stdout
        assert (f"unexpected pass: UndeclaredVerbDtype-cpu-{dtype}-conv2d: conv2d in {dtype} is not in the manifest "
                "(verb_dtypes), but conv2d on fig_7_2_1 conforms in it: declare it") in result.stdout
    # Other verbs are held in every declared dtype: corr2d ran in float64.
    assert "corr2d is declared" not in result.stdout
    assert re.search(r"cross_correlation +passed +1\d\d ", result.stdout), result.stdout[-3000:]


def test_a_verb_that_fails_where_the_manifest_leaves_it_out_confirms_the_manifest():
    result = run_suite("tests.meta.broken:NoFloat16Conv")
    assert result.returncode == 0 and "verdict: NoFloat16Conv: CONFORMANT" in result.stdout, result.stdout[-2000:]
    assert ("manifest probe: NoFloat16Conv-cpu-float16-conv2d: conv2d in float16 confirmed unsupported (tried with "
            "conv2d: Failed: NoFloat16Conv.conv2d raised TypeError: no float16 kernel for conv2d") in result.stdout
    assert "unexpected pass" not in result.stdout


def test_undeclared_and_unimplemented_verb_is_a_skip_the_verdict_counts():
    result = run_suite("tests.meta.broken:WithoutLearning", "-k", "learning")
    counts = outcome(result)
    assert result.returncode == 0 and counts.get("skipped") == 8 and "failed" not in counts, result.stdout[-2000:]
    assert "not implemented by the adapter: WithoutLearning.learn_kernel (the manifest agrees)" in result.stdout
    assert re.search(r"learning_kernel +passed +0  failed +0  skipped +0  not implemented +8", result.stdout)


def test_simulated_gpu_passes_where_the_gpu_is_asked_for():
    """The device attestation passes a conforming GPU adapter: the catalogue's
    LeavesOutputOnCPU fails it (tests/meta/test_broken_adapters.py)."""
    result = run_suite("tests.meta.simgpu:SimulatedGPU", device="gpu")
    counts = outcome(result)
    assert result.returncode == 0 and counts.get("passed", 0) > 0 and "failed" not in counts, result.stdout[-3000:]
    assert "SimulatedGPU-gpu-float32" in result.stdout


def _lists(tmp_path, name: str, text: str):
    (tmp_path / f"{name}.txt").write_text(text)
    return f"--xfails={tmp_path}"


def test_xfail_entry_turns_one_failure_into_a_known_deviation_exactly(tmp_path):
    xfails = _lists(tmp_path, "FlippedKernel", f"xfail: flipped on purpose\nupstream: https://example.org/1\n"
                                               f"{FLIPPED_EDGE}\n")
    result = run_suite("tests.meta.broken:FlippedKernel", xfails, "-k", "edge_6x8 and float32")
    counts = outcome(result)
    # Only the listed id is an expected failure; its neighbours (corr2d, matmul) still fail.
    assert "1 xfailed" in result.stdout, result.stdout[-2000:]
    assert counts.get("failed", 0) >= 2 and result.returncode == 1


def test_a_run_whose_only_failures_are_listed_is_conformant_with_known_deviations(tmp_path):
    ids = [f"tests/test_edge_detection.py::test_edge_detection[FlipsOnTheEdgeImage-cpu-float32-edge_6x8-{op}]"
           for op in ("corr2d", "conv2d", "corr2d_matmul")]
    xfails = _lists(tmp_path, "FlipsOnTheEdgeImage", "xfail: flipped on purpose\nupstream: https://example.org/1\n"
                    + "\n".join(ids) + "\n")
    result = run_suite("tests.meta.broken:FlipsOnTheEdgeImage", xfails)  # the whole suite: a verdict needs it
    assert result.returncode == 0, result.stdout[-2000:]
    # The headline names the list it read (here --xfails's), not the default folder.
    headline = r"verdict: FlipsOnTheEdgeImage: CONFORMANT with 3 known deviations \(\S+/FlipsOnTheEdgeImage.txt\)"
    assert re.search(headline, result.stdout), result.stdout[-2000:]
    assert "(spec/xfails)" not in result.stdout
    # Every chapter verb of the float32 target is listed: the chapter-verb property leaves it to those cases.
    assert "left to fixed cases    1" in result.stdout, result.stdout[-3000:]


def test_a_verb_the_list_accepts_is_left_out_of_the_chapter_property_and_the_verdict_says_so(tmp_path):
    """One listed verb: the property still runs the others on that target, and the verdict names what it
    left out (a narrowing that must not pass in silence)."""
    listed = "tests/test_edge_detection.py::test_edge_detection[FlipsOnTheEdgeImage-cpu-float32-edge_6x8-corr2d]"
    xfails = _lists(tmp_path, "FlipsOnTheEdgeImage", f"xfail: flipped on purpose\nupstream: https://example.org/1\n"
                                                     f"{listed}\n")
    result = run_suite("tests.meta.broken:FlipsOnTheEdgeImage", xfails)
    assert "verdict: FlipsOnTheEdgeImage: NOT CONFORMANT" in result.stdout  # conv2d, corr2d_matmul still fail
    assert re.search(r"FlipsOnTheEdgeImage-cpu-float32: the chapter-verb property leaves out corr2d, whose failures "
                     r"the known-deviation list accepts \(\S+FlipsOnTheEdgeImage\.txt:3\)", result.stdout), \
        result.stdout[-3000:]
    assert "leaves out conv2d" not in result.stdout and "left to fixed cases" not in result.stdout


def test_known_deviations_do_not_count_towards_the_core_level(tmp_path):
    """Listing every failure of a kernel-flipping adapter does not make it conformant."""
    first = run_suite("tests.meta.broken:FlippedKernel", "-rf")
    failed = sorted(set(re.findall(r"^FAILED (\S+)", first.stdout, re.M)))
    assert len(failed) > 50, first.stdout[-2000:]
    failed = [test for test in failed if not test.startswith("tests/test_generated.py::")]  # never listable
    xfails = _lists(tmp_path, "FlippedKernel", "xfail: flipped on purpose\nupstream: https://example.org/1\n"
                    + "\n".join(failed) + "\n")
    result = run_suite("tests.meta.broken:FlippedKernel", xfails)
    assert result.returncode == 1, result.stdout[-2000:]
    assert "verdict: FlippedKernel: NOT CONFORMANT" in result.stdout
    assert "below the core conformance level" in result.stdout


def test_xfail_that_passes_is_reported(tmp_path):
    xfails = _lists(tmp_path, "numpy", f"xfail: not really\nupstream: https://example.org/1\n{NUMPY_EDGE}\n")
    result = run_suite("numpy", xfails)
    assert result.returncode == 0
    assert f"xfail entry passes, remove it: {NUMPY_EDGE}" in result.stdout
    assert "1 xpassed" in result.stdout


def test_skip_entry_excludes_with_its_reason(tmp_path):
    xfails = _lists(tmp_path, "numpy", f"skip: would crash\nupstream: https://example.org/2\n{NUMPY_EDGE}\n")
    result = run_suite("numpy", xfails)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "would crash [https://example.org/2]" in result.stdout and "1 skipped" in result.stdout


@pytest.mark.parametrize("entry", [
    NUMPY_EDGE.replace("conv2d]", "conv3d]"),  # a typo
    NUMPY_EDGE.rsplit("-", 1)[0] + "]",  # a prefix of a real id
    NUMPY_EDGE.partition("[")[0],  # the function without parameters: would match everything
])
def test_stale_entry_is_an_error(tmp_path, entry):
    xfails = _lists(tmp_path, "numpy", f"xfail: x\nupstream: https://example.org/1\n{entry}\n")
    result = run_suite("numpy", xfails)
    assert result.returncode == 4, result.stdout[-2000:]
    said = result.stdout + result.stderr
    assert "stale entries in the known-deviation lists" in said and entry in said


def test_stale_entry_is_an_error_under_xdist_too(tmp_path):
    """Workers collect, the controller judges: still a usage error, not an internal one."""
    entry = NUMPY_EDGE.replace("conv2d]", "conv3d]")
    xfails = _lists(tmp_path, "numpy", f"xfail: x\nupstream: https://example.org/1\n{entry}\n")
    result = run_suite("numpy", xfails, "-p", "xdist", "-n", "2")
    assert result.returncode == 4, result.stdout[-2000:]
    assert "stale entries in the known-deviation lists" in result.stdout + result.stderr
    assert "INTERNALERROR" not in result.stdout + result.stderr


@pytest.mark.parametrize("entry, selection", [
    (NUMPY_EDGE.replace("float32", "float64"), ("--precision=strict",)),  # -k drops it after the check: kept
    (NUMPY_EDGE.replace("float32", "float32-fast"), ("--precision=strict",)),  # fast mode not selected
])
def test_entry_for_a_target_not_in_this_run_is_not_stale(tmp_path, entry, selection):
    xfails = _lists(tmp_path, "numpy", f"skip: x\nupstream: https://example.org/1\n{entry}\n")
    result = run_suite("numpy", xfails, "-k", "float32", *selection)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


@pytest.mark.parametrize("text, message", [
    (f"{NUMPY_EDGE}\n", "has no reason and upstream link above it"),
    (f"xfail: x\n{NUMPY_EDGE}\n", "has no reason and upstream link above it"),
    ("upstream: https://example.org\n", "'upstream:' before any 'xfail:' or 'skip:' reason"),
    (f"xfail: x\nupstream: u\n{NUMPY_EDGE}\n{NUMPY_EDGE}\n", "is listed twice"),
    ("xfail: x\nupstream: u\ntests/*\n", "not a test id"),
    ("xfail: x\nupstream: u\ntests/test_generated.py::test_generated_corr2d_matches_the_oracle[numpy-cpu-float32]\n",
     "is a generated property, which is never a known deviation"),
])
def test_malformed_list_is_an_error(tmp_path, text, message):
    result = run_suite("numpy", _lists(tmp_path, "numpy", text))
    assert result.returncode == 4 and message in result.stderr, result.stderr[-2000:]


def test_malformed_list_is_an_error_under_xdist_too(tmp_path):
    result = run_suite("numpy", _lists(tmp_path, "numpy", f"{NUMPY_EDGE}\n"), "-p", "xdist", "-n", "2")
    assert result.returncode == 4, result.stdout[-2000:] + result.stderr[-2000:]
    assert "has no reason and upstream link above it" in result.stdout + result.stderr
    assert "INTERNALERROR" not in result.stdout + result.stderr


# -- the contract's versions (backends.base.CONTRACTS) ----------------------------------------------------------


def test_an_adapter_written_before_the_contract_grew_keeps_its_verdict_and_is_told_what_is_new():
    """``verbs = VERBS`` grew from the chapter's 8 verbs to 13 under adapters written earlier: one that declares
    no contract version is held to version 1, the later verbs skip as not implemented (named), and it is
    warned in the header, the warnings summary and its verdict."""
    result = run_suite(f"{H}:DeclaresNoContract")
    assert result.returncode == 0 and "verdict: DeclaresNoContract: CONFORMANT" in result.stdout, result.stdout[-3000:]
    told = ("DeclaresNoContract declares no contract (read as 1); the suite's contract is 2, which adds conv_general, "
            "conv_general_vjp, conv_general_backprop, pool2d, conv_transpose")
    assert result.stdout.count(told) >= 2, result.stdout[-3000:]  # the header and the verdict
    assert "FutureWarning" in result.stdout, result.stdout[-3000:]
    assert "DeclaresNoContract.conv_general: added in contract 2, and the adapter targets contract 1" in result.stdout


def test_a_verb_after_the_declared_contract_is_not_asked_even_when_it_is_wrong():
    result = run_suite(f"{H}:DeclaresContract1")
    assert result.returncode == 0 and "verdict: DeclaresContract1: CONFORMANT" in result.stdout, result.stdout[-3000:]
    assert "declares contract = 1" in result.stdout


def test_the_same_adapter_declaring_the_current_contract_is_held_to_it():
    """The control: the version is what spares the adapter above, nothing else."""
    result = run_suite(f"{H}:ClaimsContract2ButLacksItsVerbs")
    assert result.returncode == 1, result.stdout[-3000:]
    assert "conv_general is declared in the adapter's manifest (verbs) but raises NotImplementedError" in result.stdout


@pytest.mark.parametrize(("adapter", "words"), [
    ("ClaimsAFutureContract", "contract = 99, but this suite knows contract versions [1, 2] (backends.base.CONTRACTS): "
                              "upgrade the suite"),
    ("ContractAsAString", "contract = '2', but this suite knows contract versions [1, 2] (backends.base.CONTRACTS): "
                          "declare one of them"),
])
def test_a_contract_the_suite_does_not_know_is_a_usage_error(adapter, words):
    result = run_suite(f"{H}:{adapter}", "-k", "fig_7_2_1")
    assert result.returncode == 4 and words in result.stderr, result.stderr[-2000:]


# -- global state the adapter names (Backend.global_state) ------------------------------------------------------


def test_global_state_the_adapter_names_is_snapshot_around_every_test():
    result = run_suite(f"{H}:NamesItsGlobalState", "-k", "fig_7_2_1")
    assert result.returncode == 1, result.stdout[-3000:]
    assert "NamesItsGlobalState: the test left global state changed" in result.stdout, result.stdout[-3000:]
    assert "NamesItsGlobalState.global_state()['unknown.mode'] was \"'eager'\", is now \"'graph'\"" in result.stdout
    assert "global RNG state: NamesItsGlobalState.global_state()['rng unknown.random']" in result.stdout


def test_without_the_name_the_same_change_goes_unseen():
    """The control of the test above: what catches it is the adapter's declaration."""
    result = run_suite(f"{H}:KeepsItsGlobalStateQuiet", "-k", "fig_7_2_1")
    assert "global state changed" not in result.stdout and "1 failed" not in result.stdout, result.stdout[-3000:]


def test_a_global_state_that_cannot_be_read_fails_by_name():
    result = run_suite(f"{H}:GlobalStateRaises", "-k", "fig_7_2_1 and conv2d")
    assert result.returncode == 1, result.stdout[-3000:]
    assert "GlobalStateRaises.global_state() cannot be read: RuntimeError: cannot read" in result.stdout


# -- an out-of-tree adapter's own cases and list (Backend.cases, Backend.known_deviations) ----------------------

OWN = "tests.meta.ownlists.adapter"


def test_an_adapter_backs_its_deviation_with_its_own_case_and_list():
    """A deviation no case of the suite shows: the adapter ships the fixed case and the entry; the headline
    names the list it read."""
    result = run_suite(f"{OWN}:ShipsItsDeviation")
    assert result.returncode == 0, result.stdout[-3000:]
    assert ("verdict: ShipsItsDeviation: CONFORMANT with 3 known deviations (tests/meta/ownlists/own_xfails.txt)"
            in result.stdout), result.stdout[-3000:]
    assert "3 xfailed" in result.stdout


def test_the_adapters_own_case_fails_without_its_entry():
    result = run_suite(f"{OWN}:ShipsTheCaseOnly")
    assert result.returncode == 1 and "verdict: ShipsTheCaseOnly: NOT CONFORMANT" in result.stdout, \
        result.stdout[-3000:]
    assert "test_adapter_case[ShipsTheCaseOnly-cpu-float64-ownlists_odd_13x13]" in result.stdout


@pytest.mark.parametrize(("adapter", "words"), [
    ("ShipsAWrongCase", "its own cases: {root}/wrong_cases.json: case ownlists_odd_13x13: expected is not the oracle's "
                        "result (spec/general.py)"),
    ("ShipsAMissingCase", "cases = 'no_such_cases.json': no such file"),
    ("ShipsAListForAnother", "tests/test_cross_correlation.py::test_cross_correlation[numpy-cpu-float64-fig_7_2_1-"
                             "conv2d] is not a test of 'ShipsAListForAnother', whose list this is"),
])
def test_what_an_adapter_ships_is_validated(adapter, words):
    from tests.meta.test_broken_adapters import ROOT

    result = run_suite(f"{OWN}:{adapter}", "-k", "fig_7_2_1")
    assert result.returncode == 4, result.stdout[-2000:] + result.stderr[-2000:]
    assert words.format(root=ROOT / "tests/meta/ownlists") in result.stderr, result.stderr[-2000:]


def test_a_draft_never_overwrites_a_curated_list(tmp_path):
    """--xfails-draft into the folder of a list a person wrote: the list stays, the draft goes beside it."""
    curated = tmp_path / "FlippedKernel.txt"
    curated.write_text("# curated by hand\n")
    result = run_suite("tests.meta.broken:FlippedKernel", "-k", "fig_7_2_1", f"--xfails-draft={tmp_path}")
    assert result.returncode == 1, result.stdout[-2000:]
    assert curated.read_text() == "# curated by hand\n"
    drafts = list(tmp_path.glob("FlippedKernel.draft-*.txt"))
    assert len(drafts) == 1 and "xfail: <why this deviation is accepted>" in drafts[0].read_text()
