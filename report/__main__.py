"""``python -m report RESULTS_DIR [--expect a,b,c] [--partial]``: write and print the agreement report.

``python -m report open RESULTS_DIR [--expect a,b,c]``: open a matrix run there first (``report/matrix.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from report import build, matrix, render


def _names(value: str) -> list[str]:
    return [n.strip() for n in value.split(",") if n.strip()]


def open_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m report open", description=matrix.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="the results folder the envs of this run will write into")
    parser.add_argument("--expect", default="", help="backends this run is meant to cover, comma-separated "
                        "(the report's default --expect)")
    args = parser.parse_args(argv)
    try:
        run = matrix.open_run(args.results, _names(args.expect))
    except OSError as exc:
        print(f"report open: cannot open a run in {args.results}: {exc}", file=sys.stderr)
        return 2
    print(f"report: matrix run {run['run_id']} opened {run['opened']} in {args.results}/{matrix.MATRIX_FILE}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["open"]:
        return open_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m report", description=__doc__)
    parser.add_argument("results", type=Path, help="the results folder the tox envs wrote into")
    parser.add_argument("--expect", default="", help="backends the run was meant to cover, comma-separated; "
                        "a missing record for any of them fails the report (default: those named when the run "
                        "was opened)")
    parser.add_argument("--partial", action="store_true", help="also show incomplete records and records of "
                        "other runs, to look at them; the report then never says AGREE, and exits 1")
    args = parser.parse_args(argv)
    if not args.results.is_dir():
        print(f"report: {args.results} is not a folder of results records", file=sys.stderr)
        return 2
    report = build(args.results, _names(args.expect), partial=args.partial)
    png = args.results / "agreement.png"
    has_png = render.heatmap(report, png)
    md = render.markdown(report)
    (args.results / "agreement.md").write_text(md)
    (args.results / "agreement.html").write_text(render.html_page(report, png if has_png else None))
    print(md)
    written = ["agreement.md", "agreement.html"] + (["agreement.png"] if has_png else [])
    print(f"report: written to {args.results}/: {', '.join(written)}")
    print(render.verdict(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
