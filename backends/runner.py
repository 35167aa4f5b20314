"""One adapter for every runner: a program in any language that speaks ``docs/runners.md``.

The suite starts the runner's command once per backend and pytest process, reads its handshake (its
name, framework, version and capability manifest), and forwards every verb of the contract to it as
one JSON line, reading one JSON line back.  The native arrays on this side are :class:`RemoteArray`:
the values a runner sent or will be sent, with their dtype and device; every arithmetic operation
happens in the runner.  Faults (a runner that does not start, exits, hangs, or speaks anything but the
protocol) raise :class:`RunnerFault` inside the test that met them, and the runner is restarted for
the next; a runner that cannot start at all is a usage error at selection.

``--backend=runner:CMD,ARG,...`` runs any command; ``tfjs`` and ``jvm`` are the runners in
``runners/``.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import shlex
import subprocess
import threading
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from backends.base import DEVICES, DTYPES, Backend, BackendUnavailable, Trajectory

PROTOCOL, VERSION = "conv-conformance-runner", 1
ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "spec" / "runner.schema.json"
#: How the verbs' results come back (docs/runners.md, section 2).
PAIRS = ("receptive_field", "conv_general_vjp", "conv_general_backprop")
NON_FINITE = {"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf}


class RunnerFault(RuntimeError):
    """The runner broke the protocol, exited or hung: the test that met it fails with these words."""


class RemoteArray:
    """An array on the runner's side of the protocol: its values (float64, exact), dtype and device."""

    __slots__ = ("values", "dtype", "device")

    def __init__(self, values: np.ndarray, dtype: str, device: str = "cpu") -> None:
        self.values, self.dtype, self.device = np.asarray(values, dtype=np.float64), dtype, device

    @property
    def shape(self) -> tuple[int, ...]:
        return self.values.shape

    def __repr__(self) -> str:
        return f"RemoteArray({self.dtype}, shape={self.shape}, device={self.device})"


def encode(value: Any) -> Any:
    """A verb argument as JSON: arrays as array objects, tuples as lists."""
    if isinstance(value, RemoteArray):
        data = [v if np.isfinite(v) else ("NaN" if np.isnan(v) else ("Infinity" if v > 0 else "-Infinity"))
                for v in value.values.ravel().tolist()]
        return {"dtype": value.dtype, "shape": list(value.shape), "data": data}
    if isinstance(value, tuple | list):
        return [encode(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def decode_array(obj: Any, what: str) -> RemoteArray:
    """An array object from the runner, checked: a known dtype, a shape that holds the data, numbers (or
    the three non-finite words) each exactly representable in that dtype."""
    if not isinstance(obj, dict) or set(obj) != {"dtype", "shape", "data"}:
        raise RunnerFault(f"protocol error: {what} is not an array object {{dtype, shape, data}}: {_short(obj)}")
    dtype, shape, data = obj["dtype"], obj["shape"], obj["data"]
    if dtype not in DTYPES:
        raise RunnerFault(f"protocol error: {what} has dtype {dtype!r}, not one of {DTYPES}")
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                              for n in shape):
        raise RunnerFault(f"protocol error: {what} has shape {shape!r}, not a list of sizes")
    if not isinstance(data, list) or len(data) != int(np.prod(shape, dtype=np.int64)):
        raise RunnerFault(f"protocol error: {what} has {len(data) if isinstance(data, list) else 'no'} values for "
                          f"shape {shape}")
    try:
        values = np.array([NON_FINITE[v] if isinstance(v, str) else v for v in data], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise RunnerFault(f"protocol error: {what} holds a value that is not a number: {_short(data)}") from None
    if values.size and any(isinstance(v, bool) for v in data):
        raise RunnerFault(f"protocol error: {what} holds a boolean")
    from spec import numerics

    held = numerics.round_to(values, dtype)
    finite = np.isfinite(values)
    if not np.array_equal(held[finite], values[finite]):
        raise RunnerFault(f"protocol error: {what} is declared {dtype} but holds values that {dtype} cannot hold "
                          f"(first: {values[finite][held[finite] != values[finite]][0]!r})")
    return RemoteArray(values.reshape(shape), dtype)


def _short(obj: Any) -> str:
    text = json.dumps(obj)[:200] if not isinstance(obj, str | bytes) else repr(obj[:200])
    return text


class _Process:
    """One running runner: its pipes, a reader thread per output stream, its last stderr lines."""

    def __init__(self, command: list[str]) -> None:
        self.command = command
        try:
            self.proc = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, bufsize=0)
        except OSError as exc:
            raise RunnerFault(f"the runner command {command} cannot start: {type(exc).__name__}: {exc}") from exc
        self.lines: queue.Queue = queue.Queue()
        self.stderr: collections.deque = collections.deque(maxlen=20)
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._drain, daemon=True).start()

    @staticmethod
    def _read(stream, lines: queue.Queue) -> None:
        for line in iter(stream.readline, b""):
            lines.put(line)
        lines.put(None)  # end of output

    def _drain(self) -> None:
        for line in iter(self.proc.stderr.readline, b""):
            self.stderr.append(line.decode("utf-8", "replace").rstrip())

    def last_words(self) -> str:
        lines = [line for line in self.stderr if line.strip()][-5:]
        return f"; its last stderr lines: {' | '.join(lines)}" if lines else "; it wrote nothing to stderr"

    def receive(self, timeout: float, waiting_for: str) -> dict:
        """The next message, or :class:`RunnerFault`: no line in time, the output closed, not a JSON object."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise RunnerFault(f"no response within {timeout:g} s {waiting_for}{self.last_words()}") from None
        if line is None:
            try:
                status = self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                status = "unknown (it closed its output but is still running)"
            raise RunnerFault(f"the runner exited with status {status} {waiting_for}{self.last_words()}")
        try:
            message = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise RunnerFault(f"protocol error: a line that is not JSON {waiting_for}: {_short(line)}"
                              f"{self.last_words()}") from None
        if not isinstance(message, dict):
            raise RunnerFault(f"protocol error: a line that is not a JSON object {waiting_for}: {_short(message)}")
        return message

    def send(self, message: dict) -> None:
        try:
            self.proc.stdin.write((json.dumps(message, allow_nan=False) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise RunnerFault(f"the runner does not take input ({type(exc).__name__}: it has exited with status "
                              f"{self.proc.poll()}){self.last_words()}") from exc

    def stop(self) -> None:
        """Close its input, give it a moment to exit, then kill it."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class RunnerBackend(Backend):
    """A backend whose framework runs in another process, in any language (``docs/runners.md``)."""

    #: The runner's argv, run from the suite's root.
    command: ClassVar[list[str]] = []
    module = "runner"
    #: Seconds to wait for the handshake and for each response (a hang fails the test, then the runner restarts).
    start_timeout = float(os.environ.get("CONV_CONFORMANCE_RUNNER_START_TIMEOUT", "60"))
    request_timeout = float(os.environ.get("CONV_CONFORMANCE_RUNNER_TIMEOUT", "120"))

    def __init__(self) -> None:
        super().__init__()
        self._process: _Process | None = None
        self._hello: dict | None = None
        self._next_id = 0
        self.restarts = 0

    @property
    def label(self) -> str:
        if type(self).__dict__.get("name"):
            return type(self).__dict__["name"]
        return (self._hello or {}).get("name") or type(self).__name__

    # -- the process -----------------------------------------------------------

    def load(self) -> Any:
        if self._hello is not None:
            return self._lib
        if not self.command:
            raise BackendUnavailable(f"backend {self.label!r}: no runner command")
        try:
            hello = self._start()
        except RunnerFault as exc:
            raise BackendUnavailable(f"backend {self.label!r}: the runner {' '.join(self.command)!r} did not "
                                     f"start: {exc}") from exc
        self._hello = hello
        # The manifest is the runner's word, read like an adapter's class attributes.
        self.verbs = tuple(hello["verbs"])
        self.dtypes = {device: tuple(d) for device, d in hello["dtypes"].items()}
        self.train_dtypes = tuple(hello.get("train_dtypes", sorted({d for v in self.dtypes.values() for d in v})))
        self.conventions = dict(hello.get("conventions", {}))
        # Optional (an older runner sends none of these): the class attributes' defaults, that is contract 1
        # (with the suite's warning), subnormals kept everywhere, every verb in every declared dtype.
        self.contract = hello.get("contract")
        self.flushes_subnormals = {device: tuple(d) for device, d in hello.get("flushes_subnormals", {}).items()}
        self.verb_dtypes = {verb: tuple(d) for verb, d in hello.get("verb_dtypes", {}).items()}
        self.module = hello["framework"]  # what the record and the report header name as the framework
        self._lib = self
        return self._lib

    def _start(self) -> dict:
        """Start the command and read its handshake: the protocol and version must be these."""
        process = _Process(self.command)
        try:
            hello = process.receive(self.start_timeout, "before its handshake")
            problem = _validate("hello", hello)
            if hello.get("protocol") != PROTOCOL or hello.get("version") != VERSION:
                problem = (f"it speaks {hello.get('protocol')!r} version {hello.get('version')!r}, the suite "
                           f"{PROTOCOL!r} version {VERSION}")
            if problem:
                raise RunnerFault(f"its handshake is refused: {problem}")
            manifest = ("contract", "verbs", "dtypes", "verb_dtypes", "flushes_subnormals")
            if self._hello is not None and {k: hello.get(k) for k in manifest} != \
                    {k: self._hello.get(k) for k in manifest}:
                raise RunnerFault("after a restart its handshake declares another manifest")
        except BaseException:
            process.stop()
            raise
        self._process = process
        return hello

    def _restart_if_needed(self) -> _Process:
        if self._process is None or self._process.proc.poll() is not None:
            if self._process is not None:
                self._process.stop()
            self._process = None
            self.restarts += 1
            self._start()
        return self._process

    def _kill(self) -> None:
        if self._process is not None:
            self._process.proc.kill()
            self._process.stop()
            self._process = None

    def request(self, verb: str, args: dict) -> Any:
        """Send one request, read its response: the result, or the runner's error as an exception."""
        process = self._restart_if_needed()
        self._next_id += 1
        rid = self._next_id
        waiting = f"to {verb} (request {rid})"
        try:
            process.send({"id": rid, "verb": verb, "args": {k: encode(v) for k, v in args.items()}})
            message = process.receive(self.request_timeout, waiting)
            problem = _validate("response", message)
            if problem:
                raise RunnerFault(f"protocol error: its response {waiting} is not a response: {problem}: "
                                  f"{_short(message)}")
            if message["id"] != rid:
                raise RunnerFault(f"protocol error: a response to request {message['id']} {waiting}")
        except BaseException:  # a fault, or pytest-timeout inside the wait: the stream is out of step now
            self._kill()
            raise
        if "error" in message:
            kind, text = message["error"]["kind"], message["error"]["message"]
            raise {"not_implemented": NotImplementedError, "invalid": ValueError}.get(kind, RuntimeError)(text)
        return message["result"]

    def close(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # -- the record --------------------------------------------------------------

    def version(self) -> str:
        hello = self._hello or {}
        return f"{hello.get('framework_version', '?')} ({hello.get('runtime', '?')}, through the runner protocol)"

    def gpu_unavailable_reason(self) -> str | None:
        if "gpu" in self.dtypes:
            return None
        return f"{self.label}'s runner declares no GPU (its handshake's dtypes: {sorted(self.dtypes)})"

    # -- data across the boundary --------------------------------------------------

    def asarray(self, a: np.ndarray, *, dtype: str, device: str) -> Any:
        if device not in DEVICES:
            raise ValueError(f"unknown device {device!r}")
        return RemoteArray(np.array(a, dtype=np.float64), dtype, device)

    def to_numpy(self, x: Any) -> np.ndarray:
        if not isinstance(x, RemoteArray):
            raise TypeError(f"not an array from the runner: {type(x).__name__}")
        from spec import numerics

        return x.values.astype(numerics.CONTAINER[x.dtype])  # bfloat16 widens exactly to float32

    def device_of(self, x: Any) -> str:
        return x.device

    def dtype_of(self, x: Any) -> str:
        return x.dtype

    # -- the verbs ---------------------------------------------------------------------

    def _array(self, verb: str, **args: Any) -> RemoteArray:
        return self._on(args, decode_array(self.request(verb, args), f"the result of {verb}"))

    def _on(self, args: dict, result: RemoteArray) -> RemoteArray:
        """The result on the device of the inputs (a runner answers on the device it computed on: the
        handshake's devices; here the CPU)."""
        devices = {a.device for a in args.values() if isinstance(a, RemoteArray)}
        result.device = devices.pop() if len(devices) == 1 else "cpu"
        return result

    def _pair(self, verb: str, **args: Any) -> tuple[RemoteArray, RemoteArray]:
        result = self.request(verb, args)
        if not isinstance(result, list) or len(result) != 2:
            raise RunnerFault(f"protocol error: {verb} answered {_short(result)}, not a list of two arrays")
        return tuple(self._on(args, decode_array(r, f"result {i} of {verb}")) for i, r in enumerate(result))

    def corr2d(self, X, K):
        return self._array("corr2d", X=X, K=K)

    def conv2d(self, X, K):
        return self._array("conv2d", X=X, K=K)

    def corr2d_matmul(self, X, K):
        return self._array("corr2d_matmul", X=X, K=K)

    def conv2d_layer(self, X, K, b):
        return self._array("conv2d_layer", X=X, K=K, b=b)

    def layer_parameters(self, kernel_size, *, dtype, device):
        result = self.request("layer_parameters", {"kernel_size": kernel_size, "dtype": dtype, "device": device})
        if not isinstance(result, dict) or not all(isinstance(s, list) for s in result.values()):
            raise RunnerFault(f"protocol error: layer_parameters answered {_short(result)}, not {{name: shape}}")
        return {name: tuple(shape) for name, shape in result.items()}

    def layer_step(self, X, K, b, Y, *, lr):
        args = {"X": X, "K": K, "b": b, "Y": Y, "lr": lr}
        result = self.request("layer_step", args)
        if not isinstance(result, dict):
            raise RunnerFault(f"protocol error: layer_step answered {_short(result)}, not {{name: array}}")
        return {name: self._on(args, decode_array(a, f"parameter {name} of layer_step")) for name, a in result.items()}

    def receptive_field(self, X, K1, K2):
        return self._pair("receptive_field", X=X, K1=K1, K2=K2)

    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        args = {"X": X, "Y": Y, "kernel_size": kernel_size, "lr": lr, "steps": steps, "initial": initial,
                "seed": seed}
        result = self.request("learn_kernel", args)
        if not isinstance(result, dict) or set(result) != {"initial", "losses", "kernel"}:
            raise RunnerFault(f"protocol error: learn_kernel answered {_short(result)}, not "
                              "{initial, losses, kernel}")
        return Trajectory(**{k: self._on(args, decode_array(v, f"{k} of learn_kernel")) for k, v in result.items()})

    def conv_general(self, X, K, **params):
        return self._array("conv_general", X=X, K=K, **params)

    def conv_general_vjp(self, X, K, dY, **params):
        return self._pair("conv_general_vjp", X=X, K=K, dY=dY, **params)

    def conv_general_backprop(self, X, K, dY, **params):
        return self._pair("conv_general_backprop", X=X, K=K, dY=dY, **params)

    def pool2d(self, X, **params):
        return self._array("pool2d", X=X, **params)

    def conv_transpose(self, X, K, **params):
        return self._array("conv_transpose", X=X, K=K, **params)


_VALIDATORS: dict = {}


def _validate(kind: str, message: dict) -> str:
    """Why ``message`` is not a valid ``kind`` ("hello" or "response") by spec/runner.schema.json, or ""."""
    if kind not in _VALIDATORS:
        import jsonschema

        schema = json.loads(SCHEMA_PATH.read_text())
        _VALIDATORS[kind] = jsonschema.Draft202012Validator({**schema, "$ref": f"#/$defs/{kind}"})
    error = next(iter(_VALIDATORS[kind].iter_errors(message)), None)
    if error is None:
        return ""
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{error.message}" + (f" (at /{where})" if where else "")


def command_backend(spec: str) -> type[RunnerBackend]:
    """``runner:CMD,ARG,...`` (the only backend of a run: its commas separate the argv) or
    ``runner:CMD ARG ...`` (shell words): a runner backend for any command."""
    argv = [part for part in spec.split(",") if part] if "," in spec else shlex.split(spec)
    if not argv:
        raise LookupError("runner: names no command (runner:CMD,ARG,...)")
    return type("Runner", (RunnerBackend,), {"command": argv, "name": None, "__module__": __name__})


class TfjsBackend(RunnerBackend):
    """TensorFlow.js on Node, its pure-JavaScript CPU backend (runners/tfjs/)."""

    name = "tfjs"
    command = ["node", "runners/tfjs/runner.mjs"]


class JvmBackend(RunnerBackend):
    """Java 17, the JDK only: the book's loops (runners/jvm/; build it first: javac -d runners/jvm/build ...)."""

    name = "jvm"
    command = ["java", "-cp", "runners/jvm/build", "Runner"]
