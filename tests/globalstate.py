"""The suite's own snapshot of the global state a verb could leave changed.

``Backend.precision_settings()`` reports what an adapter's ``numerics`` sets,
but it is the adapter's word.  This module reads, without the adapter's help,
what the suite knows of each framework's process-wide state: the environment,
NumPy's error state and legacy global generator, and, for each
framework already imported, its default dtype, grad mode, determinism switch,
global RNG state and the like.  ``conftest.py`` takes a snapshot before and
after every test; a difference fails the test and names the setting.

A framework is read only when it is already in ``sys.modules``: the snapshot
never imports anything, so a framework imported during a test (lazily, by its
adapter) is compared from the next test on.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np


def _digest(data: Any) -> str:
    """A short fingerprint of an RNG state (the states are large; arrays are hashed whole, not by repr)."""
    h = hashlib.sha256()

    def feed(x):
        if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
            x = x.numpy()
        if isinstance(x, np.ndarray):
            h.update(x.tobytes())
        elif isinstance(x, tuple | list):
            for item in x:
                feed(item)
        else:
            h.update(repr(x).encode())
    feed(data)
    return h.hexdigest()[:16]


#: Prefix of the global random generators' states.  A verb handed a seed (``learn_kernel``) uses it
#: through a generator of its own, or restores the global one; only building a layer (the book's
#: ``Conv2D`` draws its weight from the global generator, ``torch.rand``) may advance a global one.
RNG = "global RNG state: "


def _numpy() -> dict[str, Any]:
    # Python's own `random` is left out: under pytest-xdist something in the worker draws from it on
    # another thread (seen once in a JAX run), so its state is no evidence against the adapter.
    return {"numpy.geterr()": np.geterr(), RNG + "numpy.random (legacy global)": _digest(np.random.get_state())}


def _torch(torch) -> dict[str, Any]:
    return {"torch.get_default_dtype()": str(torch.get_default_dtype()),
            "torch.is_grad_enabled()": torch.is_grad_enabled(),
            "torch.is_inference_mode_enabled()": torch.is_inference_mode_enabled(),
            "torch.are_deterministic_algorithms_enabled()": torch.are_deterministic_algorithms_enabled(),
            "torch.is_anomaly_enabled()": torch.is_anomaly_enabled(),
            "torch.get_num_threads()": torch.get_num_threads(),
            RNG + "torch CPU generator": _digest(torch.random.get_rng_state())}


def _jax(jax) -> dict[str, Any]:
    names = ("jax_enable_x64", "jax_default_matmul_precision", "jax_numpy_rank_promotion", "jax_debug_nans",
             "jax_disable_jit", "jax_default_prng_impl")
    return {f"jax.config.{n}": getattr(jax.config, n, None) for n in names}


def _tensorflow(tf) -> dict[str, Any]:
    out = {RNG + "tf.random global generator": _digest(tf.random.get_global_generator().state)
           if hasattr(tf.random, "get_global_generator") else None,
           "tf.config.experimental.tensor_float_32_execution_enabled()":
           tf.config.experimental.tensor_float_32_execution_enabled(),
           "tf.config.functions_run_eagerly()": tf.config.functions_run_eagerly()}
    return out


def _keras(keras) -> dict[str, Any]:
    return {"keras floatx()": keras.backend.floatx(),
            "keras dtype policy": str(keras.mixed_precision.global_policy().name)}


def _paddle(paddle) -> dict[str, Any]:
    return {"paddle.get_default_dtype()": paddle.get_default_dtype(),
            "paddle.is_grad_enabled()": paddle.is_grad_enabled(),
            RNG + "paddle CPU generator": _digest([s.__getstate__() for s in paddle.get_rng_state()])}


def _mlx(mx) -> dict[str, Any]:
    return {"mlx.core.default_device()": str(mx.default_device()),
            RNG + "mlx.core.random.state": _digest([np.array(k) for k in mx.random.state])}


def _mxnet(mx) -> dict[str, Any]:
    return {"mxnet.autograd.is_recording()": mx.autograd.is_recording(),
            "mxnet.autograd.is_training()": mx.autograd.is_training(),
            "mxnet.util.is_np_array()": mx.util.is_np_array(), "mxnet.util.is_np_shape()": mx.util.is_np_shape()}


#: Environment variables that are not the adapter's doing: pytest rewrites its own around every test,
#: and torch sets its compiler's cache folder the first time a module is built (seen with torch 2.13).
OWN_VARIABLES = frozenset({"PYTEST_CURRENT_TEST", "TORCHINDUCTOR_CACHE_DIR"})

#: Module name -> what the suite reads of it once it is imported.
FRAMEWORKS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "torch": _torch, "jax": _jax, "tensorflow": _tensorflow, "mxnet": _mxnet, "keras": _keras, "paddle": _paddle,
    "mlx.core": _mlx}


def snapshot(bk: Any = None) -> dict[str, Any]:
    """Everything the suite knows to read, keyed by a name a person recognises; with an adapter, also the
    state it names (``Backend.global_state``)."""
    state = {f"os.environ[{k!r}]": v for k, v in os.environ.items() if k not in OWN_VARIABLES}
    if bk is not None:
        try:
            named = bk.global_state()
            if not isinstance(named, dict):
                raise TypeError(f"it returned {type(named).__name__}, not a dict")
        except Exception as exc:
            state[f"{bk.label}.global_state() (unreadable)"] = f"{type(exc).__name__}: {exc}"
        else:
            for key, value in named.items():
                if str(key).startswith("rng "):
                    state[f"{RNG}{bk.label}.global_state()[{key!r}]"] = _digest(value)
                else:
                    state[f"{bk.label}.global_state()[{key!r}]"] = repr(value)
    state.update(_numpy())
    for name, read in FRAMEWORKS.items():
        module = sys.modules.get(name)
        if module is None:
            continue
        try:
            state.update(read(module))
        except Exception as exc:  # a half-imported or unusual build: say so, rather than crash every test
            state[f"{name} (unreadable)"] = f"{type(exc).__name__}: {exc}"
    return state


def changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{name: (before, after)}`` for every setting that differs; one only in ``after`` (a framework
    imported during the test) counts only for ``os.environ``."""
    out = {k: (v, after.get(k, "<unset>")) for k, v in before.items() if after.get(k, "<unset>") != v}
    out.update({k: ("<unset>", v) for k, v in after.items() if k not in before and k.startswith("os.environ")})
    return out
