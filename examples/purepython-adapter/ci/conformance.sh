#!/usr/bin/env bash
# This adapter's conformance check, as its own CI runs it (.github/workflows/conformance.yml):
# the suite at a pinned version, this package, one command.  The verdict is the exit status.
#
#   CONV_CONFORMANCE="conv-conformance @ git+https://github.com/OWNER/conv-conformance@v0.2.0"
#
# names the suite to install: a tag or a commit of its repository (OWNER: where you take it from), a
# wheel file, or `conv-conformance==0.2.0` from an index that carries it.  conv-conformance's own CI
# (tox -e example) runs this script with the wheel built from its checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CONV_CONFORMANCE:?name the suite to install, pinned to a version (see the top of this script)}"
RESULTS="${RESULTS:-$PWD/results}"

python -m pip install "$CONV_CONFORMANCE" .
conv-conformance --backend=purepython --xfails="$PWD/xfails" --results-dir="$RESULTS" --junitxml="$RESULTS/junit.xml" "$@"
