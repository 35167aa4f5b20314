"""The adapter interface: one small base class that every backend subclasses.

An adapter translates the suite's verbs into one framework's own operations.
Everything crosses one boundary: the suite hands the adapter NumPy arrays
through :meth:`Backend.asarray`, calls verbs on native arrays, and reads the
results back with :meth:`Backend.to_numpy` after checking
:meth:`Backend.device_of` and :meth:`Backend.dtype_of`.

Conventions shared by every verb
--------------------------------
* Images and kernels are 2-D, ``(height, width)``; channel and batch axes, and
  the framework's layout (NCHW or NHWC), are the adapter's business and never
  leak into what a verb returns.
* ``device`` is ``"cpu"`` or ``"gpu"``; ``dtype`` is one of ``"float16"``,
  ``"bfloat16"``, ``"float32"``, ``"float64"``.
* A verb returns native arrays on the device and in the dtype of its inputs.
* A verb never modifies its inputs.
* A verb that an adapter does not implement raises ``NotImplementedError``; the
  suite reports it as a skip that says "not implemented by the adapter".

Subclasses register themselves by defining ``name`` (``__init_subclass__``),
so there is no second list to keep in step.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

DTYPES = ("float16", "bfloat16", "float32", "float64")
DEVICES = ("cpu", "gpu")
#: Precision modes: ``strict`` turns reduced-precision math (TF32, ...) off and
#: confirms it; ``fast`` keeps the framework's own defaults.
PRECISIONS = ("strict", "fast")
#: The chapter's verbs, in the order the suite documents them.
VERBS = ("corr2d", "conv2d", "corr2d_matmul", "conv2d_layer", "layer_parameters", "layer_step", "receptive_field",
         "learn_kernel", "conv_general", "conv_general_vjp", "conv_general_backprop", "pool2d", "conv_transpose")

#: The adapter contract's versions: the verbs each one holds an adapter to.  An adapter says which it targets
#: (:attr:`Backend.contract`); the verbs added after that version are "not implemented" for it (a skip that
#: names the version, never a failure), however it spells its manifest (``verbs = VERBS`` grows with the
#: suite), and the run warns its author what is new.  Add a version whenever :data:`VERBS` grows.
CONTRACTS: dict[int, tuple[str, ...]] = {
    1: VERBS[:8],  # the chapter (d2l 7.2) and its exercises
    2: VERBS,  # + the general convolution, its gradients (autograd and explicit), pooling, transposed convolution
}
#: The current version of the contract.
CONTRACT = max(CONTRACTS)

#: name -> adapter class, filled by ``Backend.__init_subclass__``.
REGISTRY: dict[str, type[Backend]] = {}


class BackendUnavailable(RuntimeError):
    """The backend was asked for but its framework cannot be imported."""


class PrecisionNotApplied(RuntimeError):
    """A numerical setting read back differs from the value just set."""


def confirm(setting: str, wanted: Any, actual: Any) -> None:
    """Raise :class:`PrecisionNotApplied` unless a setting reads back as set."""
    if actual != wanted:
        raise PrecisionNotApplied(f"{setting} reads {actual!r} after it was set to {wanted!r}")


@dataclass(frozen=True)
class Trajectory:
    """What :meth:`Backend.learn_kernel` returns, all native arrays.

    ``initial``: the kernel before the first step, shape ``(kh, kw)``.
    ``losses``: shape ``(steps,)``, ``losses[i]`` is the loss evaluated with the
    kernel as it was before update ``i`` (as the book's loop prints it).
    ``kernel``: the kernel after the last update, shape ``(kh, kw)``.
    """

    initial: Any
    losses: Any
    kernel: Any


def adapter_file(cls: type, relative: str) -> Path:
    """A file an adapter ships, named relative to the file of the module that defines ``cls``."""
    import sys

    module = sys.modules.get(cls.__module__)
    where = getattr(module, "__file__", None)
    if where is None:
        raise FileNotFoundError(f"{cls.__module__} has no file to name {relative!r} from")
    return (Path(where).resolve().parent / relative).resolve()


def output_shape(x_shape: tuple[int, ...], k_shape: tuple[int, ...]) -> tuple[int, int]:
    """``(nh-kh+1, nw-kw+1)``; a kernel larger than the input raises ``ValueError``.

    The book's ``corr2d`` allocates ``zeros((nh-kh+1, nw-kw+1))``: with a kernel
    one larger than the input that is a valid *empty* array, so frameworks
    return an empty result instead of failing.  Adapters call this first.
    """
    (nh, nw), (kh, kw) = tuple(x_shape), tuple(k_shape)
    if kh > nh or kw > nw:
        raise ValueError(f"kernel {kh}x{kw} is larger than the input {nh}x{nw}: no valid position")
    return nh - kh + 1, nw - kw + 1


def general_geometry(x_shape, k_shape, *, stride, dilation, padding, padding_mode, groups, layout="nchw"):
    """``(((top, bottom), (left, right)), (N, C_out, H_out, W_out))`` of a general convolution (shapes
    in ``layout``: with "nhwc", X is NHWC, K HWIO and the output shape NHWC), or
    ``ValueError`` naming the rule its parameters break (``spec/general.py``: a pad too large for its
    mode, a negative pad, groups that do not divide both channel counts, a kernel larger than the
    padded input).  Frameworks differ in which of these they refuse: some return an empty array or
    pad periodically instead.  Adapters call this first, as they call :func:`output_shape`; the pads
    it returns are for emulating a convention the framework lacks, not for replacing one it has."""
    from spec import general  # the spec's definition, NumPy only

    try:
        return general.check(tuple(x_shape), tuple(k_shape), stride=tuple(stride), dilation=tuple(dilation),
                             padding=padding, padding_mode=padding_mode, groups=groups, layout=layout)
    except general.ConvError as exc:
        raise ValueError(str(exc)) from None


def pool_geometry(x_shape, **params):
    """``(pads, output shape)`` of a pooling (:meth:`Backend.pool2d`), or ``ValueError`` naming the
    rule its parameters break (``spec.general.pool_check``)."""
    from spec import general

    try:
        return general.pool_check(tuple(x_shape), **params)
    except general.ConvError as exc:
        raise ValueError(str(exc)) from None


def pool_overhang(x_shape, pads, window, stride, out_shape) -> tuple[int, int]:
    """Per axis, the cells past the padded extent that the last (ceil-mode) pooling window covers:
    never picked, never counted.  Adapters pad them where their framework has no ceil mode."""
    return tuple(max((o - 1) * s + k - (n + lo + hi), 0) for o, s, k, n, (lo, hi)
                 in zip(out_shape[2:], stride, window, x_shape[2:], pads, strict=True))


def transpose_geometry(x_shape, k_shape, **params):
    """``(crops, output shape)`` of a transposed convolution (:meth:`Backend.conv_transpose`), or
    ``ValueError`` naming the rule its parameters break (``spec.general.transpose_check``)."""
    from spec import general

    try:
        return general.transpose_check(tuple(x_shape), tuple(k_shape), **params)
    except general.ConvError as exc:
        raise ValueError(str(exc)) from None


class Backend:
    """Base class of all adapters; defaults here, framework specifics in subclasses."""

    #: Name used by ``--backend``; defining it registers the subclass.
    name: ClassVar[str]
    #: The version of the contract (:data:`CONTRACTS`) the adapter was written for.  ``None`` (declared none,
    #: as every adapter written before versions existed): read as 1, with a warning.  Verbs added later are
    #: not asked of it.
    contract: ClassVar[int | None] = None
    #: Import name of the framework; imported lazily by :meth:`load`.
    module: ClassVar[str]
    #: Capability manifest, dtypes: the dtypes the adapter claims per device.
    #: A device missing here is one the framework cannot use.  Every dtype of
    #: :data:`DTYPES` that is *not* listed for an available device is probed
    #: once (``tests/test_manifest.py``); one that works is reported as an
    #: unexpected pass, so the manifest cannot rot.
    dtypes: ClassVar[dict[str, tuple[str, ...]]] = {"cpu": ("float32", "float64")}
    #: Dtypes in which :meth:`learn_kernel` is held to the spec (training in
    #: half precision is not part of the chapter).
    train_dtypes: ClassVar[tuple[str, ...]] = ("float32", "float64")
    #: Capability manifest, verbs: the chapter's verbs this adapter implements
    #: (autograd is ``receptive_field`` and ``learn_kernel``; the module
    #: system is ``conv2d_layer``, ``layer_parameters`` and ``layer_step``).  ``None`` declares
    #: nothing, and a verb that raises ``NotImplementedError`` is then a skip.
    #: Once declared it is checked both ways: a listed verb that raises
    #: ``NotImplementedError`` fails, and an unlisted verb that conforms is
    #: reported as an unexpected pass.
    verbs: ClassVar[tuple[str, ...] | None] = None
    #: Capability manifest, per verb (optional): ``{verb: (dtype, ...)}`` for a verb that holds in
    #: fewer dtypes than :attr:`dtypes` lists ("float64, except the built-in op": ``{"conv2d":
    #: ("float16", "float32")}``), on every device.  In a dtype it does not list, the verb's checks
    #: are skipped with the manifest's word for it, and the correlation verbs are probed there once
    #: (``tests/test_manifest.py``): one that conforms is an unexpected pass.  Verbs not named
    #: here hold in every dtype of :attr:`dtypes`.
    verb_dtypes: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: The general convolution's named conventions (``spec.general.CONVENTIONS``): per convention,
    #: the native option of the framework that gives it (``"native: tf.nn.conv2d(padding='SAME')"``),
    #: or ``"emulated: <how>"``, or ``"unsupported: <why>"``.  The report's conventions table is
    #: this, with what the run saw.  A case that needs an unsupported convention is still run: an
    #: error confirms the declaration (a skip that says so), a conforming result is an unexpected
    #: pass, a wrong number is a failure.
    conventions: ClassVar[dict[str, str]] = {}
    #: ``{device: (dtype, ...)}``: where the framework flushes subnormal inputs and results to zero
    #: (FTZ/DAZ) instead of keeping them (IEEE 754).  The cases of the ``subnormals`` convention then
    #: expect the flushed values there, and the report shows the declaration.  Default: kept everywhere.
    flushes_subnormals: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: Combinations of named conventions where the framework is known to return wrong numbers:
    #: ``((frozenset of conventions, upstream link), ...)``.  Each must be shown by a fixed case listed
    #: in the adapter's known-deviation list; generated cases keep away from them (a known bug is a
    #: fixed case with its entry, never an xfail inside a property).
    known_wrong: ClassVar[tuple[tuple[frozenset, str], ...]] = ()

    #: An out-of-tree adapter's own fixed cases (a known deviation is a fixed case, and an installed suite's
    #: ``spec/cases`` is not the adapter's to edit): a path, relative to the adapter's module file, to a JSON
    #: file in the spec's format (``spec/schema.json``), section "conventions", kinds general, pool,
    #: transpose and their errors.  Validated like the suite's own and checked against the oracle when the
    #: adapter is loaded; its ids must be new.  They run on this adapter only
    #: (``tests/test_adapter_cases.py``).  Default: none.
    cases: ClassVar[str | None] = None
    #: The adapter's own known-deviation list (``spec/xfails/README.md``'s format): a path relative to its
    #: module file, read instead of ``spec/xfails/<name>.txt`` (``--xfails DIR`` still wins).  Its entries
    #: may name this adapter's tests only.  Default: none.
    known_deviations: ClassVar[str | None] = None

    def declares(self, verb: str, dtype: str) -> bool:
        """Whether the manifest holds ``verb`` to the spec in ``dtype`` (:attr:`verb_dtypes`)."""
        held = self.verb_dtypes.get(verb)
        return held is None or dtype in held

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):  # name = None: not registered, labelled by class name
            taken = REGISTRY.get(cls.name)
            if taken is not None and (taken.__module__, taken.__qualname__) != (cls.__module__, cls.__qualname__):
                raise TypeError(f"backend name {cls.name!r} of {cls.__module__}.{cls.__qualname__} is already taken "
                                f"by {taken.__module__}.{taken.__qualname__}: choose another name")
            REGISTRY[cls.name] = cls

    def __init__(self) -> None:
        self._lib: Any = None

    @property
    def label(self) -> str:
        """How test ids and records name this adapter: its own registered
        ``name``, or, for a subclass that defines none (a broken adapter in
        ``tests/meta``), its class name."""
        return type(self).__dict__.get("name") or type(self).__name__

    # -- environment -------------------------------------------------------

    @property
    def lib(self) -> Any:
        """The framework module, imported on first use."""
        if self._lib is None:
            self.load()
        return self._lib

    def load(self) -> Any:
        """Import the framework; raise :class:`BackendUnavailable` with the cause."""
        try:
            self._lib = importlib.import_module(self.module)
        except Exception as exc:  # a broken install can raise anything
            raise BackendUnavailable(
                f"backend {self.name!r}: cannot import {self.module!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        return self._lib

    def version(self) -> str:
        return str(getattr(self.lib, "__version__", "unknown"))

    def gpu_unavailable_reason(self) -> str | None:
        """``None`` when a GPU is usable, else why not (shown in the skip)."""
        return f"{self.name} has no GPU support in this adapter"

    def device_description(self, device: str) -> str:
        """Human-readable name of the device (GPU model where there is one)."""
        return device

    @contextlib.contextmanager
    def numerics(self, device: str, dtype: str, precision: str = "strict") -> Iterator[None]:
        """Apply this framework's numerical setup for one test, restore it after.

        The place for float64 switches and, in the ``strict`` precision mode,
        for turning reduced-precision math (TF32) off and determinism on, each
        read back to confirm (:func:`confirm`).  ``fast`` keeps the
        framework's defaults.  Every setting is restored in ``finally``; the
        suite compares :meth:`precision_settings` before and after each test.
        """
        yield

    def precision_settings(self) -> dict[str, Any]:
        """The current values of every setting :meth:`numerics` may touch, read
        from the framework (not remembered): the results record shows them, and
        the suite checks that none has changed after a test."""
        return {}

    def global_state(self) -> dict[str, Any]:
        """The framework's process-wide state that a verb could leave changed and the suite does not know
        (``tests/globalstate.py`` reads torch's, JAX's, TensorFlow's, MXNet's, Keras's, Paddle's and MLX's by
        itself): ``{name: value}``, read from the framework at each call.  The suite snapshots it
        before and after every test, and a difference fails the test naming it.  A name that starts with
        ``"rng "`` is a random generator's state (hashed; a layer's construction may advance it).  Default:
        nothing."""
        return {}

    def determinism(self, device: str, precision: str) -> str | None:
        """``None`` when repeating a computation on ``device`` in this precision
        mode promises the same bits; otherwise why not (the repeat check then
        reports a difference instead of failing)."""
        return None

    # -- data across the boundary ------------------------------------------

    def asarray(self, a: np.ndarray, *, dtype: str, device: str) -> Any:
        """A native array with ``a``'s values, in ``dtype`` on ``device``.

        ``a`` already holds values representable in ``dtype`` (bfloat16 values
        come in a float32 array), so the conversion is exact.
        """
        raise NotImplementedError

    def to_numpy(self, x: Any) -> np.ndarray:
        """NumPy copy of a native array; bfloat16 widens (exactly) to float32."""
        raise NotImplementedError

    def device_of(self, x: Any) -> str:
        """``"cpu"`` or ``"gpu"``: where the native array ``x`` lives."""
        raise NotImplementedError

    def dtype_of(self, x: Any) -> str:
        """The native dtype of ``x`` as one of :data:`DTYPES` (or its own name)."""
        raise NotImplementedError

    # -- the chapter's verbs -------------------------------------------------

    def corr2d(self, X: Any, K: Any) -> Any:
        """The book's ``corr2d``: a Python double loop over output positions,
        each the sum of ``X[i:i+kh, j:j+kw] * K``, in the framework's ops.

        Returns ``(nh-kh+1, nw-kw+1)``.  A kernel larger than the input on
        either axis raises an exception (never an empty array).
        """
        raise NotImplementedError

    def conv2d(self, X: Any, K: Any) -> Any:
        """The framework's built-in 2-D convolution op (cross-correlation,
        'VALID' padding, stride 1), one image and one channel; layout handled
        inside.  Same contract as :meth:`corr2d`."""
        raise NotImplementedError

    def corr2d_matmul(self, X: Any, K: Any) -> Any:
        """Cross-correlation as one matrix product (exercise 4): build the
        im2col / Toeplitz matrix in the framework's ops and multiply."""
        raise NotImplementedError

    def conv2d_layer(self, X: Any, K: Any, b: Any) -> Any:
        """The book's ``Conv2D`` layer class, built in the framework's module
        system with ``K`` and ``b`` (shape ``(1,)``) loaded as its weight and
        bias; returns its forward pass ``corr2d(X, weight) + bias``."""
        raise NotImplementedError

    def layer_parameters(self, kernel_size: tuple[int, int], *, dtype: str, device: str) -> dict[str, tuple[int, ...]]:
        """The trainable parameters that the book's ``Conv2D`` registers with
        the framework's module system: ``{name: shape}``, as the framework
        itself enumerates them (not as the adapter remembers them)."""
        raise NotImplementedError

    def layer_step(self, X: Any, K: Any, b: Any, Y: Any, *, lr: float) -> dict[str, Any]:
        """One step of the framework's own plain SGD optimizer (no momentum, no
        weight decay) on the book's ``Conv2D`` loaded with ``K`` and ``b``, over
        the parameters its module system enumerates, on the loss
        ``sum((Conv2D(X) - Y)**2)``.  Returns ``{name: value after the step}``
        for every parameter the optimizer was given (native arrays).  A bias the
        module system does not know is not given to the optimizer, and so does
        not move: the suite checks that weight *and* bias moved by the exact
        gradient step."""
        raise NotImplementedError

    def receptive_field(self, X: Any, K1: Any, K2: Any) -> tuple[Any, Any]:
        """Two stacked cross-correlations ``Z = corr(corr(X, K1), K2)``.

        Returns, by the framework's autograd, ``(dZ.sum()/dX, dY[0, 0]/dX)``
        where ``Y = corr(X, K1)``; both shaped like ``X``.
        """
        raise NotImplementedError

    # -- beyond the chapter: the general convolution (spec/general.py) -------

    def conv_general(self, X: Any, K: Any, *, stride: tuple[int, int], dilation: tuple[int, int],
                     padding: str | tuple[tuple[int, int], tuple[int, int]], padding_mode: str, groups: int,
                     layout: str = "nchw") -> Any:
        """The framework's general 2-D convolution (cross-correlation), as ``spec/general.py`` defines it.

        ``X`` is ``(N, C_in, H, W)`` and ``K`` ``(C_out, C_in/groups, kh, kw)`` (the spec's logical
        layout: an adapter whose framework wants NHWC/HWIO transposes them, in its own ops, and
        transposes the result back); returns ``(N, C_out, H_out, W_out)``.  ``padding`` is
        ``"valid"``, ``"same"`` (extra pixel at the end), ``"same_lower"`` (extra pixel at the
        beginning) or ``((top, bottom), (left, right))``; ``padding_mode`` is ``"zeros"``,
        ``"reflect"``, ``"replicate"``, ``"symmetric"`` or ``"circular"``: pad the input, then a VALID
        strided, dilated correlation.  Invalid parameters (a pad too large for its mode, a negative
        pad, groups that do not divide both channel counts, a kernel larger than the padded input)
        raise an exception, never a result.  :attr:`conventions` says, per named convention, which
        native option gives it.

        ``layout`` is passed only by the cases that ask for channels-last (convention ``layout_nhwc``):
        then ``X`` is ``(N, H, W, C_in)``, ``K`` ``(kh, kw, C_in/groups, C_out)`` (HWIO) and the result
        ``(N, H_out, W_out, C_out)``, as the gradients of :meth:`conv_general_vjp` and
        :meth:`conv_general_backprop` (``dX`` NHWC, ``dK`` HWIO).  An adapter whose framework has no
        channels-last path declares the convention unsupported, and raises.
        """
        raise NotImplementedError

    def conv_general_vjp(self, X: Any, K: Any, dY: Any, **params: Any) -> tuple[Any, Any]:
        """``(dX, dK)``: the gradients of ``sum(conv_general(X, K, **params) * dY)`` through the
        framework's autograd (the same parameters as :meth:`conv_general`)."""
        raise NotImplementedError

    def conv_general_backprop(self, X: Any, K: Any, dY: Any, **params: Any) -> tuple[Any, Any]:
        """``(dX, dK)`` as :meth:`conv_general_vjp`, but from the framework's *explicit* gradient
        functions (``torch.nn.grad.conv2d_input``/``conv2d_weight``, TensorFlow's
        ``conv2d_backprop_input``/``conv2d_backprop_filter``), which take the input's or the kernel's
        shape because a strided backward cannot infer it.  Called on zero padding only: these
        functions differentiate the convolution, not a padding mode.  A framework without such
        functions leaves the verb out of :attr:`verbs` and raises ``NotImplementedError`` saying so."""
        raise NotImplementedError

    def pool2d(self, X: Any, *, kind: str, window: tuple[int, int], stride: tuple[int, int],
               padding: str | tuple[tuple[int, int], tuple[int, int]], ceil_mode: bool,
               count_include_pad: bool) -> Any:
        """The framework's 2-D pooling (d2l 7.5), as ``spec.general.pool_check`` defines it: ``kind``
        ``"max"`` or ``"avg"`` over ``window`` with ``stride``, on ``(N, C, H, W)``; ``padding``
        ``"valid"``, ``"same"`` or ``((top, bottom), (left, right))``; ``ceil_mode`` for ceil output
        sizes (the last window starting inside the input or the leading pad); an average divides by
        the window's size within the padded input (``count_include_pad``) or by its input cells.
        Invalid parameters raise: call ``backends.base.pool_geometry`` first."""
        raise NotImplementedError

    def conv_transpose(self, X: Any, K: Any, *, stride: tuple[int, int], dilation: tuple[int, int],
                       padding: str | tuple[tuple[int, int], tuple[int, int]],
                       output_padding: tuple[int, int]) -> Any:
        """The framework's transposed convolution (d2l 14.10), as ``spec.general.transpose_check`` defines it:
        ``X`` ``(N, C_in, H, W)``, ``K`` ``(C_in, C_out, kh, kw)``; every input cell scatters its
        kernel-weighted copy (no flip) at ``stride``, taps ``dilation`` apart; ``output_padding`` cells
        are added at the end; then ``padding`` is cropped: ``((top, bottom), (left, right))`` or
        ``"same"`` (an ``n * s`` output, ``total // 2`` cropped at the beginning: TensorFlow's 'SAME').
        Invalid parameters raise: call ``backends.base.transpose_geometry`` first."""
        raise NotImplementedError

    def learn_kernel(
        self, X: Any, Y: Any, *, kernel_size: tuple[int, int], lr: float, steps: int,
        initial: Any | None, seed: int,
    ) -> Trajectory:
        """The book's kernel-learning loop with the framework's built-in conv
        layer (no bias), its own autograd and plain gradient descent on the
        **sum** of squared errors.

        ``initial`` is ``None`` (keep the layer's own random initialisation,
        seeded with ``seed`` through the framework's own RNG) or a native
        ``kernel_size`` array loaded into the layer before the first step.
        """
        raise NotImplementedError
