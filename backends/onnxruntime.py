"""ONNX Runtime, CPU: each verb is a small ONNX graph (``onnx.helper``, opset 22) run in an ``InferenceSession``
cached per graph; native arrays are ``OrtValue``.  The book's ``corr2d`` loop builds one graph (Slice, Mul,
ReduceSum per output position).  No autograd, no module system.  :meth:`load` asks ORT once per verb and dtype
which CPU kernels exist (NOT_IMPLEMENTED otherwise).  ORT has no process-wide numerics switch: the settings live
in each session's ``SessionOptions``; :meth:`numerics` swaps in strict ones and reads them back from each session.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from backends.base import DTYPES, Backend, confirm, general_geometry, output_shape, pool_geometry, transpose_geometry

OPSET = 22  # onnx >= 1.16 writes it; ORT >= 1.20 runs it (ConvTranspose, the pools and Pad's 'wrap' included)
_TYPES = {"float16": "FLOAT16", "bfloat16": "BFLOAT16", "float32": "FLOAT", "float64": "DOUBLE"}
_NAMES = {f"tensor({onnx_name.lower()})": dtype for dtype, onnx_name in _TYPES.items()}  # OrtValue.data_type()
_INFERENCE = ("corr2d", "conv2d", "corr2d_matmul", "conv_general", "pool2d", "conv_transpose")
#: Strict mode: SessionOptions attributes and config entries (the latter read back as strings).
STRICT = {"use_deterministic_compute": True, "intra_op_num_threads": 1, "inter_op_num_threads": 1}
STRICT_CONFIG = {"session.set_denormal_as_zero": "0", "mlas.enable_gemm_fastmath_arm64_bfloat16": "0"}
_WANTED = {**{f"SessionOptions.{a}": v for a, v in STRICT.items()},
           **{f"SessionOptions config {k}": v for k, v in STRICT_CONFIG.items()}}
_CACHE = 64  # sessions kept (each holds a thread pool: a thread per core in fast mode); the oldest go first
_NO_AUTOGRAD = "ONNX Runtime is an inference engine: no autograd (onnxruntime-training is another package)"
_NO_MODULES = "ONNX Runtime has no module system (layers, parameters, optimizers): it runs fixed graphs"
_ONE = {"stride": (1, 1), "dilation": (1, 1)}


def _refuse(why: str):
    def verb(self, *args, **kwargs):
        raise NotImplementedError(why)
    return verb


class _Graph:
    """An ONNX graph under construction: ``g(op, *inputs, **attributes)`` adds a node, returns its output."""

    def __init__(self, onnx) -> None:
        self.h, self.T, self.nodes, self.consts = onnx.helper, onnx.TensorProto, [], []

    def __call__(self, op: str, *inputs: str, **attrs: Any) -> str:
        self.nodes.append(self.h.make_node(op, list(inputs), [f"t{len(self.nodes)}"], **attrs))
        return f"t{len(self.nodes) - 1}"

    def const(self, values, scalar: bool = False) -> str:
        """An int64 initializer (shapes, indices, slice bounds: never the data)."""
        values, name = [int(v) for v in np.ravel(values)], f"c{len(self.consts)}"
        self.consts.append(self.h.make_tensor(name, self.T.INT64, [] if scalar else [len(values)], values))
        return name


class OnnxruntimeBackend(Backend):
    name = "onnxruntime"
    contract = 2
    module = "onnxruntime"
    # Replaced in load() by what ORT's CPU kernels ran (1.31, x86-64: bfloat16 has no Conv, Mul, MatMul or Pad;
    # float64 no Conv, ConvTranspose or AveragePool).  Subnormals are kept (set_denormal_as_zero stays off).
    dtypes = {"cpu": ("float16", "float32", "float64")}
    verbs = _INFERENCE
    # 'same' pooling uses a negative pad total as it is (pool_*_same_stride_past_window): generated pools keep away
    known_wrong = ((frozenset({"pool_same"}), "https://github.com/microsoft/onnxruntime/issues/10086"),)
    verb_dtypes = {v: ("float16", "float32") for v in ("conv2d", "conv_general", "pool2d", "conv_transpose")}
    conventions = {
        "valid": "native: Conv(auto_pad='VALID')", "explicit": "native: Conv(pads=[top, left, bottom, right])",
        "same": "native: Conv(auto_pad='SAME_UPPER'); emulated with dilation: the explicit pads (ORT's Conv refuses "
                "dilation with SAME_*, 'Dilation not supported for AutoPadType::SAME_UPPER', onnxruntime#20582)",
        "same_lower": "native: Conv(auto_pad='SAME_LOWER'); emulated with dilation: the explicit pads (as 'same')",
        "same_strided": "native: auto_pad='SAME_UPPER' with strides", "stride": "native: Conv(strides=)",
        "dilation": "native: Conv(dilations=)", "dilation_strided": "native", "groups": "native: Conv(group=)",
        "channels": "native: NCHW input, OIHW weight (ONNX's only layout)", "depthwise": "native: Conv(group=C_in)",
        "reflect": "native: a Pad(mode='reflect') node", "replicate": "native: Pad(mode='edge')",
        "circular": "native: Pad(mode='wrap')",
        "symmetric": "emulated: Slice(steps=-1) of the edges, Concat (ONNX Pad has no symmetric mode)",
        "gradient": f"not given: {_NO_AUTOGRAD}; conv_general_vjp and conv_general_backprop are left out of verbs "
                    "(their checks skip as not implemented; the forward checks of the cases that list it still run)",
        "layout_nhwc": "emulated: Transpose nodes around the Conv (ONNX Conv is NCHW / OIHW only)",
        "subnormals": "kept (IEEE 754): session.set_denormal_as_zero stays '0' (measured)",
        "pool_max": "native: MaxPool", "pool_avg": "native: AveragePool", "pool_same": "native: auto_pad='SAME_UPPER'",
        "pool_padding": "native: pads=[top, left, bottom, right] (a trailing pad >= the window, which ORT refuses, "
                        "onnxruntime#801, clipped to window - 1: no valid window reaches past it)",
        "pool_asymmetric": "native: pads= (clipped as for pool_padding)",
        "pool_include_pad": "native: count_include_pad=1", "pool_exclude_pad": "native: count_include_pad=0",
        "pool_ceil": "native: ceil_mode=1", "transpose": "native: ConvTranspose, weight (C_in, C_out, kh, kw)",
        "transpose_stride": "native: strides=", "transpose_dilation": "native: dilations=",
        "transpose_same": "native: auto_pad='SAME_UPPER'", "transpose_crop": "native: pads=, output_padding=",
    }

    def load(self) -> Any:
        ort, self._onnx, self._sessions = super().load(), importlib.import_module("onnx"), {}
        self._options = ort.SessionOptions()  # ORT's defaults; numerics() swaps in the strict ones
        self._missing = ort.capi.onnxruntime_pybind11_state.NotImplemented
        ran = {verb: tuple(d for d in DTYPES if self._runs(verb, d)) for verb in _INFERENCE}
        self.verbs = tuple(v for v in _INFERENCE if ran[v])
        self.dtypes = {"cpu": tuple(d for d in DTYPES if any(d in held for held in ran.values()))}
        self.verb_dtypes = {v: ran[v] for v in self.verbs if ran[v] != self.dtypes["cpu"]}
        return ort

    def _runs(self, verb: str, dtype: str) -> bool:
        """Whether ORT's CPU kernels run ``verb`` in ``dtype`` (on the smallest inputs, every op it uses)."""
        one = lambda *shape: self.asarray(np.ones(shape), dtype=dtype, device="cpu")  # noqa: E731
        pool = {"window": (1, 1), "stride": (1, 1), "padding": "valid", "ceil_mode": False, "count_include_pad": True}
        calls = {"conv_general": lambda: self.conv_general(one(1, 1, 2, 2), one(1, 1, 1, 1), padding="valid",
                                                           padding_mode="zeros", groups=1, **_ONE),
                 "pool2d": lambda: [self.pool2d(one(1, 1, 2, 2), kind=kind, **pool) for kind in ("max", "avg")],
                 "conv_transpose": lambda: self.conv_transpose(one(1, 1, 1, 1), one(1, 1, 1, 1), **_ONE,
                                                               padding=((0, 0), (0, 0)), output_padding=(0, 0))}
        try:
            calls.get(verb, lambda: getattr(self, verb)(one(2, 2), one(1, 1)))()
        except (self._missing, NotImplementedError):  # ORT's NOT_IMPLEMENTED: no kernel for this type
            return False
        return True

    conv2d_layer = layer_parameters = layer_step = _refuse(_NO_MODULES)
    receptive_field = conv_general_vjp = _refuse(_NO_AUTOGRAD)
    learn_kernel = _refuse(f"{_NO_AUTOGRAD}; {_NO_MODULES}")
    conv_general_backprop = _refuse("ONNX has no gradient operators (ConvGrad is onnxruntime-training's)")

    def gpu_unavailable_reason(self) -> str | None:
        return "this adapter runs ONNX Runtime's CPUExecutionProvider only"

    @contextlib.contextmanager
    def numerics(self, device: str, dtype: str, precision: str = "strict") -> Iterator[None]:
        if precision != "strict":
            yield  # fast: ORT's default SessionOptions (a thread per core, deterministic compute off)
            return
        saved, strict = self._options, self.lib.SessionOptions()
        try:
            for attr, value in STRICT.items():
                setattr(strict, attr, value)
            for key, value in STRICT_CONFIG.items():
                strict.add_session_config_entry(key, value)
            for name, value in self._read(strict).items():
                confirm(name, _WANTED[name], value)
            self._options = strict
            yield
        finally:
            self._options = saved

    def precision_settings(self) -> dict[str, Any]:
        return self._read(self._options)

    @staticmethod
    def _read(options) -> dict[str, Any]:
        """The settings numerics() touches, as ``options`` (the adapter's, or a session's own) reads them."""
        out: dict[str, Any] = {f"SessionOptions.{attr}": getattr(options, attr) for attr in STRICT}
        for key in STRICT_CONFIG:
            try:
                out[f"SessionOptions config {key}"] = options.get_session_config_entry(key)
            except RuntimeError:  # unset: ORT's default applies
                out[f"SessionOptions config {key}"] = "<unset: default>"
        return out

    def determinism(self, device: str, precision: str) -> str | None:
        return None if precision == "strict" else ("fast mode keeps ORT's default SessionOptions (deterministic "
                                                   "compute off, a thread per core): no promise of repeatable bits")

    def _run(self, key: tuple, build, *values, out_dtype: str | None = None) -> Any:
        """Run the graph ``build(g, *input_names) -> output name`` on OrtValues; sessions cached by key."""
        ort, h = self.lib, self._onnx.helper
        shapes, types = tuple(tuple(v.shape()) for v in values), tuple(v.element_type() for v in values)
        settings = self._read(self._options)
        full = (key, types, shapes, out_dtype, tuple(settings.items()))
        if full not in self._sessions:
            g, names = _Graph(self._onnx), [f"x{i}" for i in range(len(values))]
            out = build(g, *names)
            out_type = getattr(self._onnx.TensorProto, _TYPES[out_dtype]) if out_dtype else types[0]
            graph = h.make_graph(g.nodes, key[0], [h.make_tensor_value_info(n, t, s) for n, t, s in
                                                   zip(names, types, shapes, strict=True)],
                                 [h.make_tensor_value_info(out, out_type, None)], initializer=g.consts)
            opset = [h.make_opsetid("", OPSET)]
            model = h.make_model(graph, opset_imports=opset, ir_version=h.find_min_ir_version_for(opset))
            try:
                session = ort.InferenceSession(model.SerializeToString(), self._options,
                                               providers=["CPUExecutionProvider"])
            except self._missing as exc:  # a verb the manifest leaves out: say so, as a skip
                if key[0] in self.verbs:
                    raise
                raise NotImplementedError(f"ONNX Runtime has no CPU kernel: {exc}") from exc
            for name, value in self._read(session.get_session_options()).items():
                confirm(f"the session's {name}", settings[name], value)
            while len(self._sessions) >= _CACHE:
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[full] = (session, names, out)
        session, names, out = self._sessions[full]
        return session.run_with_ort_values([out], dict(zip(names, values, strict=True)))[0]

    def asarray(self, a: np.ndarray, *, dtype: str, device: str) -> Any:
        if device != "cpu":
            raise ValueError(f"{device}: this adapter runs ORT's CPUExecutionProvider only")
        # A private copy (an OrtValue shares the NumPy buffer it is made from).  NumPy has no bfloat16: float32
        # values (exact in bfloat16) through ORT's Cast.
        x = self.lib.OrtValue.ortvalue_from_numpy(np.array(a, dtype=np.float32 if dtype == "bfloat16" else dtype))
        return self._cast(x, dtype) if dtype == "bfloat16" else x

    def _cast(self, x: Any, dtype: str) -> Any:
        to = getattr(self._onnx.TensorProto, _TYPES[dtype])
        return self._run(("cast",), lambda g, v: g("Cast", v, to=to), x, out_dtype=dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        if not isinstance(x, self.lib.OrtValue):
            raise TypeError(f"expected an onnxruntime.OrtValue, got {type(x).__name__}")
        x = self._cast(x, "float32") if self.dtype_of(x) == "bfloat16" else x  # widened exactly by ORT's Cast
        return np.array(x.numpy(), copy=True)  # .numpy() is a view of ORT's buffer

    def device_of(self, x: Any) -> str:
        return "cpu" if x.device_name().lower() == "cpu" else x.device_name()

    def dtype_of(self, x: Any) -> str:
        return _NAMES.get(x.data_type(), x.data_type())

    def corr2d(self, X: Any, K: Any) -> Any:
        (kh, kw), (oh, ow) = K.shape(), output_shape(X.shape(), K.shape())

        def build(g, x, k):  # the book's loop, one Slice * K summed per output position
            rows = [g("Concat", *[g("ReduceSum", g("Mul", g("Slice", x, g.const([i, j]), g.const([i + kh, j + kw])), k),
                                    keepdims=1) for j in range(ow)], axis=1) for i in range(oh)]
            return g("Concat", *rows, axis=0)
        return self._run(("corr2d",), build, X, K)

    def conv2d(self, X: Any, K: Any) -> Any:
        oh, ow = output_shape(X.shape(), K.shape())

        def build(g, x, k):
            y = g("Conv", g("Reshape", x, g.const([1, 1, *X.shape()])), g("Reshape", k, g.const([1, 1, *K.shape()])))
            return g("Reshape", y, g.const([oh, ow]))
        return self._run(("conv2d",), build, X, K)

    def corr2d_matmul(self, X: Any, K: Any) -> Any:
        (_, w), (kh, kw) = X.shape(), K.shape()
        oh, ow = output_shape(X.shape(), K.shape())

        def build(g, x, k):
            def steps(n, step, shape):  # 0, step, ..., (n - 1) step along one axis of a 4-D index grid
                return g("Reshape", g("Range", g.const(0, True), g.const(n * step, True), g.const(step, True)),
                         g.const(shape))
            # X's flat index of window cell (a, e) at output (i, j): (i + a) w + (j + e).
            index = g("Add", g("Add", steps(oh, w, [oh, 1, 1, 1]), steps(ow, 1, [1, ow, 1, 1])),
                      g("Add", steps(kh, w, [1, 1, kh, 1]), steps(kw, 1, [1, 1, 1, kw])))
            im2col = g("Gather", g("Reshape", x, g.const([-1])), g("Reshape", index, g.const([oh * ow, kh * kw])))
            return g("Reshape", g("MatMul", im2col, g("Reshape", k, g.const([kh * kw, 1]))), g.const([oh, ow]))
        return self._run(("corr2d_matmul",), build, X, K)

    def conv_general(self, X, K, *, stride, dilation, padding, padding_mode, groups, layout="nchw"):
        pads, _ = general_geometry(X.shape(), K.shape(), stride=stride, dilation=dilation, padding=padding,
                                   padding_mode=padding_mode, groups=groups, layout=layout)
        (t, b), (le, r) = pads
        # VALID after a Pad node; the word, but for SAME_* with dilation, which ORT's Conv refuses: its pads.
        word = "valid" if padding_mode != "zeros" else padding if padding == "valid" or isinstance(padding, str) \
            and tuple(dilation) == (1, 1) else None
        attrs = {"strides": list(stride), "dilations": list(dilation), "group": groups,
                 **({"auto_pad": {"same": "SAME_UPPER"}.get(word, word.upper())} if word else {"pads": [t, le, b, r]})}

        def build(g, x, k):
            if layout == "nhwc":  # ONNX Conv is NCHW / OIHW only
                x, k = g("Transpose", x, perm=[0, 3, 1, 2]), g("Transpose", k, perm=[3, 2, 0, 1])
            if padding_mode != "zeros":
                x = self._pad(g, x, pads, padding_mode)
            y = g("Conv", x, k, **attrs)
            return g("Transpose", y, perm=[0, 2, 3, 1]) if layout == "nhwc" else y
        return self._run(("conv_general", repr(attrs), padding_mode, pads, layout), build, X, K)

    @staticmethod
    def _pad(g, x, pads, mode):
        (t, b), (le, r) = pads
        if mode != "symmetric":
            word = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
            return g("Pad", x, g.const([0, 0, t, le, 0, 0, b, r]), mode=word)
        for axis, (lo, hi) in ((2, (t, b)), (3, (le, r))):  # mirrored with the edge: x[lo-1] .. x[0] | x | ..
            top, bottom = ([g("Slice", x, *map(g.const, ([start], [stop], [axis], [-1])))] if n else []
                           for start, stop, n in ((lo - 1, -2**63, lo), (-1, -hi - 1, hi)))
            x = g("Concat", *top, x, *bottom, axis=axis)
        return x

    def pool2d(self, X, *, kind, window, stride, padding, ceil_mode, count_include_pad):
        pads, _ = pool_geometry(X.shape(), kind=kind, window=window, stride=stride, padding=padding,
                                ceil_mode=ceil_mode, count_include_pad=count_include_pad)
        (t, b), (le, r) = pads
        # ORT refuses a pad as large as the window ("Pad should be smaller than kernel").  A leading one is an
        # error of the spec as well (window 0 would hold no input cell); a valid trailing one is never reached
        # past window - 1 cells (no window starts in it), so it is clipped there: the same windows and divisors.
        b, r = min(b, window[0] - 1), min(r, window[1] - 1)
        attrs = {"kernel_shape": list(window), "strides": list(stride), "ceil_mode": int(ceil_mode),
                 **({"auto_pad": "SAME_UPPER"} if padding == "same" else {"pads": [t, le, b, r]})}
        if kind == "avg":
            attrs["count_include_pad"] = int(count_include_pad)
        op = "MaxPool" if kind == "max" else "AveragePool"
        return self._run(("pool2d", op, repr(attrs)), lambda g, x: g(op, x, **attrs), X)

    def conv_transpose(self, X, K, *, stride, dilation, padding, output_padding):
        crops, _ = transpose_geometry(X.shape(), K.shape(), stride=stride, dilation=dilation, padding=padding,
                                      output_padding=output_padding)
        (t, b), (le, r) = crops
        attrs = {"strides": list(stride), "dilations": list(dilation), "output_padding": list(output_padding),
                 **({"auto_pad": "SAME_UPPER"} if padding == "same" else {"pads": [t, le, b, r]})}
        return self._run(("conv_transpose", repr(attrs)), lambda g, x, k: g("ConvTranspose", x, k, **attrs), X, K)

