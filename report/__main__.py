"""``python -m report RESULTS_DIR [--expect a,b,c]``: write and print the agreement report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from report import build, render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m report", description=__doc__)
    parser.add_argument("results", type=Path, help="the results folder the tox envs wrote into")
    parser.add_argument("--expect", default="", help="backends the run was meant to cover, comma-separated; "
                        "a missing record for any of them fails the report")
    args = parser.parse_args(argv)
    if not args.results.is_dir():
        print(f"report: {args.results} is not a folder of results records", file=sys.stderr)
        return 2
    report = build(args.results, [n for n in args.expect.split(",") if n])
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
