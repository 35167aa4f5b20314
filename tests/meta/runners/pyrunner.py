"""A runner in Python for the harness's own tests (docs/runners.md): the reference adapter's
computations behind the protocol, and, chosen by ``--fault``, each way a runner can go wrong.

    python tests/meta/runners/pyrunner.py [--fault NAME] [--on VERB] [--after N]

The fault happens on the first request for ``--on`` (default: any verb) after ``--after`` requests.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import numpy as np  # noqa: E402

from backends.base import CONTRACT, VERBS, Trajectory  # noqa: E402
from backends.numpy import NumpyBackend  # noqa: E402

FAULTS = ("none", "no_hello", "old_version", "exit_at_start", "crash", "hang", "noise", "wrong_id", "wrong_shape",
          "wrong_dtype", "unheld_value", "not_json", "exit_after_hello")


def encode(a) -> dict:
    a = np.asarray(a)
    dtype = {"float16": "float16", "float32": "float32", "float64": "float64"}[a.dtype.name]
    data = [v if np.isfinite(v) else ("NaN" if np.isnan(v) else ("Infinity" if v > 0 else "-Infinity"))
            for v in a.astype(np.float64).ravel().tolist()]
    return {"dtype": dtype, "shape": list(a.shape), "data": data}


def decode(v):
    if isinstance(v, dict) and set(v) == {"dtype", "shape", "data"}:
        values = [{"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf}.get(x, x) for x in v["data"]]
        return np.array(values, dtype={"bfloat16": np.float32}.get(v["dtype"], v["dtype"])).reshape(v["shape"])
    if isinstance(v, list) and v and all(isinstance(x, list) for x in v):
        return tuple(tuple(x) for x in v)
    return tuple(v) if isinstance(v, list) else v


def result(verb: str, out):
    if isinstance(out, Trajectory):
        return {"initial": encode(out.initial), "losses": encode(out.losses), "kernel": encode(out.kernel)}
    if verb == "layer_parameters":
        return {k: list(v) for k, v in out.items()}
    if isinstance(out, dict):
        return {k: encode(v) for k, v in out.items()}
    if isinstance(out, tuple | list):
        return [encode(v) for v in out]
    return encode(out)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fault", choices=FAULTS, default="none")
    parser.add_argument("--on", default=None)
    parser.add_argument("--after", type=int, default=0)
    args = parser.parse_args()
    out = sys.stdout
    bk = NumpyBackend()
    if args.fault == "exit_at_start":
        print("cannot find my framework", file=sys.stderr)
        return 3
    if args.fault == "no_hello":
        time.sleep(3600)
    hello = {"protocol": "conv-conformance-runner", "version": 2 if args.fault == "old_version" else 1,
             "contract": CONTRACT, "name": "pyrunner", "framework": "NumPy behind the protocol",
             "framework_version": np.__version__,
             "runtime": f"python {sys.version.split()[0]}", "verbs": list(VERBS),
             "dtypes": {"cpu": ["float16", "float32", "float64"]}, "train_dtypes": ["float32", "float64"]}
    out.write(json.dumps(hello) + "\n")
    out.flush()
    if args.fault == "exit_after_hello":
        return 0
    seen = 0
    for line in sys.stdin:
        request = json.loads(line)
        rid, verb = request["id"], request["verb"]
        kwargs = {k: decode(v) for k, v in request["args"].items()}
        due = args.fault != "none" and (args.on is None or verb == args.on) and seen >= args.after
        seen += 1
        if due and args.fault == "crash":
            print(f"simulated crash in {verb}", file=sys.stderr)
            os._exit(7)
        if due and args.fault == "hang":
            time.sleep(3600)
        if due and args.fault == "noise":
            out.write("Hi there, I am a framework banner on stdout\n")
        if due and args.fault == "not_json":
            out.write("{not json\n")
            out.flush()
            continue
        try:
            answer = {"id": rid, "result": result(verb, getattr(bk, verb)(**kwargs))}
        except NotImplementedError as exc:
            answer = {"id": rid, "error": {"kind": "not_implemented", "message": str(exc)}}
        except ValueError as exc:
            answer = {"id": rid, "error": {"kind": "invalid", "message": str(exc)}}
        except Exception as exc:
            answer = {"id": rid, "error": {"kind": "failed", "message": f"{type(exc).__name__}: {exc}"}}
        if due and args.fault == "wrong_id":
            answer["id"] = rid + 1000
        if due and "result" in answer and isinstance(answer["result"], dict) and "shape" in answer["result"]:
            r = answer["result"]
            if args.fault == "wrong_shape":
                r["shape"] = list(reversed(r["shape"]))
                if r["shape"] == list(reversed(r["shape"])):
                    r["shape"], r["data"] = [r["shape"][0], r["shape"][1] + 1], r["data"] + [0.0] * r["shape"][0]
            elif args.fault == "wrong_dtype":
                r["dtype"] = "float16" if r["dtype"] != "float16" else "float32"
            elif args.fault == "unheld_value" and r["dtype"] == "float32":
                r["data"][0] = r["data"][0] + 1e-12 if r["data"] else 0.1
        out.write(json.dumps(answer) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
