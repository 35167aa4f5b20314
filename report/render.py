"""Markdown, HTML and a heatmap PNG for a :class:`report.Report`."""

from __future__ import annotations

import base64
import html
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

import spec
from report import KNOWN_DEVIATION, Report, is_deviation

DTYPE_ORDER = ("float64", "float32", "float16", "bfloat16")


def _dtypes(report: Report) -> list[str]:
    present = {c.dtype for c in report.comparisons}
    return [d for d in DTYPE_ORDER if d in present]


def _targets(report: Report, dtype: str) -> list[str]:
    return sorted({t for c in report.comparisons if c.dtype == dtype for t in (c.a, c.b)})


def worst_matrix(report: Report, dtype: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Targets, and per pair the worst tolerance units and max |a - b| over all compared outputs."""
    names = _targets(report, dtype)
    index = {n: i for i, n in enumerate(names)}
    units = np.full((len(names), len(names)), np.nan)
    diffs = np.full_like(units, np.nan)
    np.fill_diagonal(units, 0.0)
    np.fill_diagonal(diffs, 0.0)
    for c in report.comparisons:
        if c.dtype != dtype:
            continue
        for i, j in ((index[c.a], index[c.b]), (index[c.b], index[c.a])):
            units[i, j] = np.fmax(units[i, j], c.units)
            diffs[i, j] = np.fmax(diffs[i, j], c.max_abs_diff)
    return names, units, diffs


def _key(rec, r: dict) -> tuple[str, str, str, str]:
    return (r["backend"] or rec.backend, r["device"] or "-", r["dtype"] or "-", r.get("precision") or "strict")


def _status_rows(report: Report) -> list[list[str]]:
    counts: dict[tuple, Counter] = defaultdict(Counter)
    headlines = {rec.backend: rec.meta["verdict"]["headline"] for rec in report.records}
    for rec in report.records:
        for r in rec.meta["results"]:
            if not r.get("probe"):
                counts[_key(rec, r)][r["outcome"]] += 1
    rows = []
    for (bk, dev, dt, mode), n in sorted(counts.items()):
        failed = n["failed"] + n["error"]
        headline = headlines.get(bk, "")
        verdict = "FAIL" if failed else ("no check passed" if not n["passed"] else (
            "pass" if headline.startswith("CONFORMANT") else f"pass, but the backend is {headline or 'unjudged'}"))
        rows.append([bk, dev, dt, mode, str(n["passed"]), str(failed), str(n["skipped"] + n["xfailed"]),
                     verdict])
    return rows


def _error_rows(report: Report) -> list[list[str]]:
    """How far each target is from the exact (float64-checked) oracle, over every checked output."""
    worst: dict[tuple, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for rec in report.records:
        for r in rec.meta["results"]:
            if r.get("probe") or r["outcome"] != "passed" or r["max_abs_error"] is None:
                continue
            w = worst[_key(rec, r)]
            w[0] = max(w[0], r["max_abs_error"])
            w[1] = max(w[1], r["max_tolerance_units"] or 0.0)
    return [[bk, dev, dt, mode, f"{err:.3g}", f"{units:.3g}"]
            for (bk, dev, dt, mode), (err, units) in sorted(worst.items())]


def _skip_rows(report: Report) -> list[list[str]]:
    reasons = Counter((rec.backend, r["reason"]) for rec in report.records for r in rec.meta["results"]
                      if r["outcome"] == "skipped" and not is_deviation(r))
    return [[bk, str(n), why] for (bk, why), n in sorted(reasons.items())]


def _deviation_rows(report: Report) -> list[list[str]]:
    """Known deviations apart from skips: backend, how many checks, the outcome, the list file, the
    reason and the upstream link."""
    def why(r: dict) -> str:  # one row per list entry's block: the line number of each id dropped
        return re.sub(r"^\((.*?):\d+\)", r"(\1)", (r["reason"] or "").removeprefix(KNOWN_DEVIATION).lstrip())

    reasons = Counter((rec.backend, r["outcome"], why(r)) for rec in report.records for r in rec.meta["results"]
                      if is_deviation(r))
    # Each deviation's finding (findings/<framework>/<slug>: its reproduction and upstream state), as its
    # reason names it; docs/findings.md lists them all.
    return [[bk, str(n), outcome, why, ", ".join(dict.fromkeys(re.findall(r"findings/[\w-]+/[\w-]+", why))) or "-"]
            for (bk, outcome, why), n in sorted(reasons.items())]


def _conventions(case_id: str) -> list[str]:
    try:
        case = spec.find(case_id)
    except (StopIteration, spec.SpecError):
        return []
    return case.data.get("conventions", []) if case.kind in ("general", "general_error", "pool", "pool_error",
                                                             "transpose", "transpose_error") else []


def conventions_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    """Per named convention (spec/general.py), per backend: how the adapter says it gives it
    (native, emulated, unsupported, or not stated) and what this run saw of the checks that need it."""
    backends = [rec.backend for rec in report.records]
    seen: dict[tuple[str, str], Counter] = {}
    for rec in report.records:
        for r in rec.meta["results"]:
            for c in _conventions(r.get("case") or ""):
                outcome = "deviation" if is_deviation(r) else r["outcome"]
                seen.setdefault((c, rec.backend), Counter())[outcome] += 1
    rows = []
    for c in spec.general.CONVENTIONS:
        row = [c]
        for rec in report.records:
            said = (rec.meta.get("declared_conventions") or {}).get(c, "")
            how = said.split(":", 1)[0].strip().lower() if said else "not stated"
            n = seen.get((c, rec.backend), Counter())
            if not n:
                row.append(f"{how}; not run")
                continue
            parts = [f"{n[k]} {k}" for k in ("passed", "failed", "error", "deviation", "skipped") if n[k]]
            row.append(f"{how}; {', '.join(parts)}")
        rows.append(row)
    return ["convention"] + backends, rows


def _how_rows(report: Report) -> list[list[str]]:
    return [[rec.backend, c, said] for rec in report.records
            for c, said in (rec.meta.get("declared_conventions") or {}).items()]


def _record_rows(report: Report) -> list[list[str]]:
    return [[r.backend, r.meta["verdict"]["headline"] + ("" if r.meta["run"]["complete"] else " (incomplete)"),
             r.meta["framework_version"], ", ".join(f"{k}: {v}" for k, v in r.meta["devices"].items()),
             r.meta["python"], r.meta["platform"], (r.meta["run"]["id"] or "none")[:12], r.meta["run"]["started"]]
            for r in report.records]


def _repeat_rows(report: Report) -> tuple[int, list[list[str]]]:
    """The repeat check per target: how many gave the same bits, and the rest with what they said."""
    same, other = 0, []
    for rec in report.records:
        for r in rec.meta["results"]:
            if r["function"] != "test_repeat_gives_same_bits" or r["outcome"] != "passed":
                continue
            status = r.get("determinism") or ""
            if status == "repeatable":
                same += 1
            else:
                other.append(list(_key(rec, r)) + [status])
    return same, sorted(other)


def _generated_rows(report: Report) -> list[list[str]]:
    """Per generated property and dtype: how many draws were compared, across how many targets, and the worst."""
    from report import GENERATED

    rows: dict[tuple[str, str], dict] = defaultdict(lambda: {"draws": set(), "targets": set(), "pairs": 0,
                                                             "units": 0.0, "diff": 0.0})
    for c in report.comparisons:
        if not c.what.startswith(GENERATED):
            continue
        row = rows[c.what.split("-")[1], c.dtype]
        row["draws"].add(c.what)
        row["targets"] |= {c.a, c.b}
        row["pairs"] += 1
        row["units"], row["diff"] = max(row["units"], c.units), max(row["diff"], c.max_abs_diff)
    return [[kind, dtype, str(len(r["draws"])), str(len(r["targets"])), str(r["pairs"]), _fmt_units(r["units"]),
             f"{r['diff']:.2g}"] for (kind, dtype), r in sorted(rows.items())]


def _fmt_units(u: float) -> str:
    return "—" if np.isnan(u) else ("inf" if np.isinf(u) else f"{u:.3g}")


def tables(report: Report) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) for every table, shared by Markdown and HTML."""
    out = [("Records", ["backend", "verdict", "version", "devices", "python", "platform", "matrix run", "started"],
            _record_rows(report)),
           ("Conformance: backend × device × dtype × precision mode",
            ["backend", "device", "dtype", "precision", "passed", "failed", "skipped", "verdict"],
            _status_rows(report)),
           ("Distance from the exact oracle: worst over the passed checks, as max |error| and in units of the "
            "check's own tolerance (1 = at the bound)",
            ["backend", "device", "dtype", "precision", "max |error|", "tolerance units"], _error_rows(report))]
    for dtype in _dtypes(report):
        names, units, diffs = worst_matrix(report, dtype)
        rows = [[a] + [f"{_fmt_units(units[i, j])} ({diffs[i, j]:.2g})" if i != j else "·"
                       for j in range(len(names))] for i, a in enumerate(names)]
        out.append((f"Agreement, {dtype}: worst over seeded cases, learning trajectories, the conventions' outputs "
                    "and the generated draws, in pair-tolerance units (max |a−b|); above 1 is a disagreement",
                    [""] + names, rows))
    generated = _generated_rows(report)
    if generated:
        out.append(("Generated cases (tests/test_generated.py): the same draws compared across targets",
                    ["property", "dtype", "draws", "targets", "pairs", "worst units", "max |a−b|"], generated))
    header, rows = conventions_rows(report)
    if any(cell.split(";")[1].strip() != "not run" for row in rows for cell in row[1:]):
        out.append(("Conventions of the general convolution (spec/general.py): how each backend's adapter says it "
                    "gives each (native, emulated, unsupported), and the checks of this run that need it", header,
                    rows))
        out.append(("How each adapter gives each convention, in its own words", ["backend", "convention", "how"],
                    _how_rows(report)))
    bad = sorted(report.disagreements, key=lambda c: -c.units)
    if bad:
        out.append(("Disagreements beyond tolerance", ["case", "output", "dtype", "a", "b", "max |a−b|", "units"],
                    [[c.case, c.what, c.dtype, c.a, c.b, f"{c.max_abs_diff:.3g}", _fmt_units(c.units)]
                     for c in bad[:200]]))
    if report.failures:
        out.append(("Failed checks", ["backend", "test", "reason"],
                    [[f["backend"], f["test"], f["reason"].splitlines()[0][:300] if f["reason"] else ""]
                     for f in report.failures[:200]]))
    same, other = _repeat_rows(report)
    if same or other:
        out.append((f"Repeatability: {same} target(s) gave the same bits twice, as promised. The targets "
                    "without that promise, and what the repeat check saw", ["backend", "device", "dtype", "precision",
                                                                    "repeat check"], other))
    deviations = _deviation_rows(report)
    if deviations:
        out.append(("Known deviations (spec/xfails): listed, with their reasons and upstream links, and kept out of "
                    "the comparison", ["backend", "checks", "outcome", "(list file) reason [upstream]",
                                       "finding (docs/findings.md)"],
                    deviations))
    skips = _skip_rows(report)
    if skips:
        out.append(("Skips, by reason", ["backend", "count", "reason"], skips))
    return out


def verdict(report: Report) -> str:
    if report.ok:
        n = len(report.comparisons)
        return f"AGREE: {len(report.records)} records, {n} pairwise comparisons, all within tolerance, no failures"
    parts = [f"{len(report.problems)} record problem(s)"] if report.problems else []
    if report.disagreements:
        parts.append(f"{len(report.disagreements)} pair(s) disagree beyond tolerance")
    if report.partial is not None:
        parts.append(f"{len(report.partial)} incomplete or stale record(s) shown under --partial")
        return "PARTIAL (--partial: no agreement verdict): " + ", ".join(parts)
    if report.failures:
        parts.append(f"{len(report.failures)} failed check(s)")
    return "DISAGREE: " + ", ".join(parts)


def markdown(report: Report) -> str:
    lines = ["# conv-conformance agreement report", "", f"**{verdict(report)}**", ""]
    if report.run:
        lines += [f"Matrix run `{report.run['run_id']}`, opened {report.run['opened']}.", ""]
    lines += [f"- ERROR: {p}" for p in report.problems]
    lines += [f"- PARTIAL: {p}" for p in report.partial or []]
    for title, header, rows in tables(report):
        lines += ["", f"## {title}", "", "| " + " | ".join(h.replace("|", "\\|") for h in header) + " |",
                  "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def heatmap(report: Report, path: Path) -> bool:
    dtypes = _dtypes(report)
    if not dtypes:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(dtypes), figsize=(5.6 * len(dtypes), 4.6), squeeze=False)
    for ax, dtype in zip(axes[0], dtypes, strict=True):
        names, units, _ = worst_matrix(report, dtype)
        shown = np.log10(np.clip(np.nan_to_num(units, nan=0.0, posinf=1e6), 1e-3, 1e3))
        im = ax.imshow(shown, cmap="RdYlGn_r", vmin=-3, vmax=3)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_title(dtype)
        for i in range(len(names)):
            for j in range(len(names)):
                if i != j:
                    ax.text(j, i, _fmt_units(units[i, j]), ha="center", va="center", fontsize=7)
    fig.subplots_adjust(wspace=0.45)
    fig.colorbar(im, ax=axes[0].tolist(), label="log10(worst |a−b| / pair tolerance); > 0 disagrees")
    fig.suptitle(verdict(report)[:110], fontsize=10)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True


def html_page(report: Report, png: Path | None) -> str:
    esc = html.escape
    body = [f"<h1>conv-conformance agreement report</h1><p class='{'ok' if report.ok else 'bad'}'>"
            f"{esc(verdict(report))}</p>"]
    body += [f"<p class='bad'>ERROR: {esc(p)}</p>" for p in report.problems]
    body += [f"<p class='bad'>PARTIAL: {esc(p)}</p>" for p in report.partial or []]
    if png is not None:
        data = base64.b64encode(png.read_bytes()).decode()
        body.append(f"<img alt='agreement heatmap' src='data:image/png;base64,{data}'>")
    for title, header, rows in tables(report):
        body.append(f"<h2>{esc(title)}</h2><table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
        for row in rows:
            cls = " class='bad'" if "FAIL" in row or any(c.startswith("inf") for c in row) else ""
            body.append(f"<tr{cls}>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
        body.append("</table>")
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1.5em}"
             "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}.ok{color:#070;font-weight:bold}"
             ".bad{color:#b00;font-weight:bold}img{max-width:100%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>conv-conformance agreement</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")
