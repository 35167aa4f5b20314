"""Deliberately broken adapters: one mistake each, on top of the NumPy reference.

``tests/meta/test_broken_adapters.py`` runs the whole suite against each and
asserts that it fails, with the words that name the mistake.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

from backends.base import VERBS, Trajectory
from backends.numpy import NumpyBackend
from tests.meta import simgpu
from tests.meta.simgpu import SimulatedGPU, SimulatedTF32

CORRELATION_VERBS = ("corr2d", "conv2d", "corr2d_matmul")


class _Broken(NumpyBackend):
    """Applies ``mangle`` to the kernel and/or the output of every correlation verb."""

    def kernel(self, K):
        return K

    def output(self, Y, X, K):
        return Y

    def corr2d(self, X, K):
        return self.output(super().corr2d(X, self.kernel(K)), X, K)

    def conv2d(self, X, K):
        return self.output(super().conv2d(X, self.kernel(K)), X, K)

    def corr2d_matmul(self, X, K):
        return self.output(super().corr2d_matmul(X, self.kernel(K)), X, K)


class FlippedKernel(_Broken):
    """True convolution where cross-correlation is meant (Flux's ``Conv``)."""

    def kernel(self, K):
        return K[::-1, ::-1].copy()


class TransposedKernel(_Broken):
    def kernel(self, K):
        return K.T.copy()


class OneRowShort(_Broken):
    def output(self, Y, X, K):
        return Y[:-1]


class SamePadding(_Broken):
    """'SAME' zero padding where 'VALID' is meant (flax's default)."""

    def output(self, Y, X, K):
        (kh, kw) = K.shape
        pad = ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2)
        return NumpyBackend.conv2d(self, np.pad(X, pad), K)


class TransposedOutput(_Broken):
    """An NHWC/NCHW mix-up that hands back the output transposed."""

    def output(self, Y, X, K):
        return Y.T.copy()


class BiasIgnored(NumpyBackend):
    def conv2d_layer(self, X, K, b):
        return super().conv2d_layer(X, K, np.zeros_like(b))


class BiasTwice(NumpyBackend):
    def conv2d_layer(self, X, K, b):
        return super().conv2d_layer(X, K, b) + b


class Float64InFloat32(_Broken):
    """float64 silently computed in float32, and cast back."""

    def output(self, Y, X, K):
        if X.dtype != np.float64:
            return Y
        return NumpyBackend.conv2d(self, X.astype(np.float32), K.astype(np.float32)).astype(np.float64)


class RoundsThroughFloat16(_Broken):
    def output(self, Y, X, K):
        return Y.astype(np.float16).astype(Y.dtype)


class ModifiesInput(_Broken):
    def output(self, Y, X, K):
        X[0, 0] += 1
        return Y


class MeanLoss(NumpyBackend):
    """Gradient descent on the mean of the squared errors (torch's MSELoss default)."""

    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        t = super().learn_kernel(X, Y, kernel_size=kernel_size, lr=lr / Y.size, steps=steps,
                                 initial=initial, seed=seed)
        return Trajectory(t.initial, t.losses / Y.size, t.kernel)


class HalfMeanLoss(NumpyBackend):
    """Gradient descent on half the mean of the squared errors (DJL's L2Loss)."""

    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        t = super().learn_kernel(X, Y, kernel_size=kernel_size, lr=lr / (2 * Y.size), steps=steps,
                                 initial=initial, seed=seed)
        return Trajectory(t.initial, t.losses / (2 * Y.size), t.kernel)


class WrongLearningRate(NumpyBackend):
    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        return super().learn_kernel(X, Y, kernel_size=kernel_size, lr=lr / 3, steps=steps,
                                    initial=initial, seed=seed)


class WrongGradient(NumpyBackend):
    """One component of the input gradient is wrong."""

    def receptive_field(self, X, K1, K2):
        dz, dy = super().receptive_field(X, K1, K2)
        dz = dz.copy()
        dz[2, 2] = 0
        return dz, dy


class WrongDevice(NumpyBackend):
    """Claims its results live on another device than the one asked for."""

    def device_of(self, x):
        return "gpu"


class SloppyOnRandomValues(_Broken):
    """Exact on the integer-valued cases, but rounds through float16 whenever a
    value is not an integer: wrong by a small amount on random inputs only."""

    def output(self, Y, X, K):
        if np.array_equal(X, np.round(X)) and np.array_equal(K, np.round(K)):
            return Y
        return Y.astype(np.float16).astype(Y.dtype)


class RaisesOnUse(NumpyBackend):
    """Imports fine, breaks on first use of the built-in op."""

    def conv2d(self, X, K):
        raise RuntimeError("simulated crash inside the framework's conv op")


class ReturnsNaN(_Broken):
    def output(self, Y, X, K):
        Y = Y.copy()
        Y.flat[-1] = np.nan
        return Y


class ReturnsInf(_Broken):
    """Overflows: the first value comes back as -inf."""

    def output(self, Y, X, K):
        Y = Y.copy()
        Y.flat[0] = -np.inf
        return Y


class ReturnsList(_Broken):
    """Hands back a nested Python list, not an array of the framework."""

    def output(self, Y, X, K):
        return Y.tolist()

    def to_numpy(self, x):
        if isinstance(x, list):
            raise TypeError("a list is not a numpy.ndarray")
        return super().to_numpy(x)

    def device_of(self, x):
        return super().device_of(np.asarray(x))

    def dtype_of(self, x):
        return str(np.asarray(x).dtype) if not isinstance(x, list) else "list"


class WrongDtype(_Broken):
    """Returns float32 whatever the inputs were."""

    def output(self, Y, X, K):
        return Y.astype(np.float32)


class Hangs(NumpyBackend):
    def corr2d(self, X, K):
        import time

        time.sleep(60)
        return super().corr2d(X, K)


class Unimportable(NumpyBackend):
    """Asked for, but its framework is not installed."""

    module = "no_such_framework_conv_conformance"


class ClaimsGPU(NumpyBackend):
    """Not broken: declares GPU dtypes on a machine without a GPU (the skip path)."""

    dtypes = {"cpu": ("float32",), "gpu": ("float32",)}

    def gpu_unavailable_reason(self):
        return "no GPU here (simulated)"


class EmptyForLargeKernel(NumpyBackend):
    """The book's corr2d without the shape check: a kernel one larger gives an empty array."""

    def corr2d(self, X, K):
        h, w = K.shape
        Y = np.zeros((max(X.shape[0] - h + 1, 0), max(X.shape[1] - w + 1, 0)), dtype=X.dtype)
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
        return Y


class BiasNotRegistered(NumpyBackend):
    """The layer keeps its bias outside the module system's parameters."""

    def layer_parameters(self, kernel_size, *, dtype, device):
        return {"weight": tuple(kernel_size)}


class Segfaults(NumpyBackend):
    """A native library that dereferences a null pointer inside the built-in op,
    on the 6x8 edge image only (the process dies with SIGSEGV)."""

    def conv2d(self, X, K):
        if X.shape == (6, 8):
            import ctypes

            ctypes.string_at(0)  # reads address 0: a real segmentation fault
        return super().conv2d(X, K)


class SquareKernel(_Broken):
    """Reads the kernel's size from its height alone: a non-square kernel handled as square."""

    def kernel(self, K):
        k = K.shape[0]
        return K[:, :k].copy() if K.shape[1] >= k else np.pad(K, ((0, 0), (0, k - K.shape[1])))


class LeavesOutputOnCPU(SimulatedGPU):
    """Computes the built-in op on the host and forgets to move the result to the GPU."""

    def conv2d(self, X, K):
        return np.asarray(super().conv2d(X, K))


class DeclaresMatmulButLacksIt(NumpyBackend):
    """The manifest lists every verb, but the matrix-product one is missing."""

    verbs = VERBS

    def corr2d_matmul(self, X, K):
        raise NotImplementedError


class UndeclaredVerb(NumpyBackend):
    """Not broken: implements receptive_field but leaves it out of its manifest."""

    verbs = tuple(v for v in VERBS if v != "receptive_field")


class UndeclaredDtype(NumpyBackend):
    """Not broken: float16 and float64 work, but the manifest lists float32 only."""

    dtypes = {"cpu": ("float32",)}


class WithoutLearning(NumpyBackend):
    """Not broken: has no autograd loop, and its manifest says so."""

    verbs = tuple(v for v in VERBS if v != "learn_kernel")

    def learn_kernel(self, X, Y, **kwargs):
        raise NotImplementedError


class TF32LeftOn(SimulatedTF32):
    """Strict mode that never turns TF32 off (the confirmation is missing too)."""

    def _switch(self, value):
        pass

    @contextlib.contextmanager
    def numerics(self, device, dtype, precision="strict"):
        yield


class SwitchDoesNotTake(SimulatedTF32):
    """Sets TF32 off through a switch that does not take; the read-back catches it."""

    def _switch(self, value):
        pass


class LeaksSettings(SimulatedTF32):
    """Turns TF32 off for strict mode and never turns it back on."""

    @contextlib.contextmanager
    def numerics(self, device, dtype, precision="strict"):
        if precision == "strict":
            simgpu.SETTINGS["allow_tf32"] = False
        yield


class Nondeterministic(SimulatedGPU):
    """Its GPU sums in a different order on every call (atomics): the last bit
    of the built-in op's float results changes from run to run, within tolerance."""

    calls = 0

    def conv2d(self, X, K):
        Y = super().conv2d(X, K)
        if isinstance(Y, simgpu.OnGPU) and not np.array_equal(np.asarray(X), np.round(np.asarray(X))):
            type(self).calls += 1
            Y = Y.copy()
            Y.flat[0] = np.nextafter(Y.flat[0], np.inf if self.calls % 2 else -np.inf)
        return Y


class NondeterministicAndSaysSo(Nondeterministic):
    """Not broken: the same, but it does not promise determinism on its GPU."""

    def determinism(self, device, precision):
        return "the simulated GPU sums with atomics" if device == "gpu" else None


class FlipsOnTheEdgeImage(NumpyBackend):
    """Flips the edge kernel [1, -1] on a 6x8 float32 image only: a handful of failures in a whole run,
    every other check (the core level included) passes."""

    def _kernel(self, X, K):
        edge = X.shape == (6, 8) and X.dtype == np.float32 and np.array_equal(K, [[1, -1]])
        return K[::-1, ::-1].copy() if edge else K

    def corr2d(self, X, K):
        return super().corr2d(X, self._kernel(X, K))

    def conv2d(self, X, K):
        return super().conv2d(X, self._kernel(X, K))

    def corr2d_matmul(self, X, K):
        return super().corr2d_matmul(X, self._kernel(X, K))


class NaNLosses(NumpyBackend):
    """Learns the right kernel but reports NaN losses (a check written `error > bound` is False for NaN)."""

    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        t = super().learn_kernel(X, Y, kernel_size=kernel_size, lr=lr, steps=steps, initial=initial, seed=seed)
        return Trajectory(t.initial, np.full_like(t.losses, np.nan), t.kernel)


class LearnOverwritesY(NumpyBackend):
    """Learns from a copy, then zeroes the target output it was handed."""

    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        t = super().learn_kernel(X, Y.copy(), kernel_size=kernel_size, lr=lr, steps=steps, initial=initial, seed=seed)
        Y[...] = 0
        return t


class ReceptiveFieldOverwritesK1(NumpyBackend):
    def receptive_field(self, X, K1, K2):
        out = super().receptive_field(X, K1.copy(), K2)
        K1[...] = 0
        return out


class IgnoresSeed(NumpyBackend):
    """Draws the initial kernel from NumPy's unseeded global generator."""

    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        return super().learn_kernel(X, Y, kernel_size=kernel_size, lr=lr, steps=steps, initial=initial,
                                    seed=int(np.random.randint(1 << 30)))


class SameStartForEverySeed(NumpyBackend):
    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        return super().learn_kernel(X, Y, kernel_size=kernel_size, lr=lr, steps=steps, initial=initial, seed=0)


class SeedsTheGlobalGenerator(NumpyBackend):
    """Seeds NumPy's global generator (as keras.utils.set_random_seed does) and draws from it."""

    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        if initial is None:
            np.random.seed(seed)
            initial = np.random.random_sample(kernel_size).astype(X.dtype)
        return super().learn_kernel(X, Y, kernel_size=kernel_size, lr=lr, steps=steps, initial=initial, seed=seed)


class LeavesErrstate(_Broken):
    """Silences NumPy's floating-point warnings for the rest of the process."""

    def output(self, Y, X, K):
        np.seterr(all="ignore")
        return Y


class SetsEnvironment(_Broken):
    def output(self, Y, X, K):
        os.environ["CONV_META_LEFT_BEHIND"] = "1"
        return Y


class MeanInReceptiveField(NumpyBackend):
    """Differentiates Z.mean() where Z.sum() is meant (on a 1x1 Z the two agree)."""

    def receptive_field(self, X, K1, K2):
        dz, dy = super().receptive_field(X, K1, K2)
        z_size = (X.shape[0] - K1.shape[0] - K2.shape[0] + 2) * (X.shape[1] - K1.shape[1] - K2.shape[1] + 2)
        return dz / z_size, dy


def _trained(self, X, Y, kernel_size, lr, steps, initial, seed, **variant):
    """The book's loop with one variant (tests/test_learning_kernel.simulate), as native NumPy."""
    from tests.test_learning_kernel import simulate

    if initial is None:
        initial = np.random.default_rng(seed).random(kernel_size).astype(X.dtype)
    losses, W = simulate(X, Y, initial, lr=lr, steps=steps, dtype=X.dtype, **variant)
    return Trajectory(initial=initial.copy(), losses=losses.astype(X.dtype), kernel=W.astype(X.dtype))


class LossesOneStepLate(NumpyBackend):
    """Records each loss after the update instead of before it."""

    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        t = super().learn_kernel(X, Y, kernel_size=kernel_size, lr=lr, steps=steps + 1, initial=initial, seed=seed)
        W = super().learn_kernel(X, Y, kernel_size=kernel_size, lr=lr, steps=steps, initial=initial, seed=seed).kernel
        return Trajectory(t.initial, t.losses[1:], W)


class TrueConvolutionLayer(NumpyBackend):
    """A layer that flips its kernel (a true convolution: the d2l-julia Flux result)."""

    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        return _trained(self, X, Y, kernel_size, lr, steps, initial, seed, flip=True)


class LayerWithBias(NumpyBackend):
    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        return _trained(self, X, Y, kernel_size, lr, steps, initial, seed, bias=True)


class AccumulatesGradients(NumpyBackend):
    """Never zeroes the gradient between steps (torch without zero_grad)."""

    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        return _trained(self, X, Y, kernel_size, lr, steps, initial, seed, accumulate=True)


class LearnsInFloat32(NumpyBackend):
    """A float64 run whose loop computes in float32."""

    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        if X.dtype != np.float64:
            return super().learn_kernel(X, Y, kernel_size=kernel_size, lr=lr, steps=steps, initial=initial, seed=seed)
        t = super().learn_kernel(X.astype(np.float32), Y.astype(np.float32), kernel_size=kernel_size, lr=lr,
                                 steps=steps, initial=None if initial is None else initial.astype(np.float32),
                                 seed=seed)
        return Trajectory(*(np.asarray(a, dtype=np.float64) for a in (t.initial, t.losses, t.kernel)))


class ReportsAnotherStart(NumpyBackend):
    """Trains from its own draw, but reports another kernel as the start."""

    def learn_kernel(self, X, Y, *, kernel_size, lr, steps, initial, seed):
        t = super().learn_kernel(X, Y, kernel_size=kernel_size, lr=lr, steps=steps, initial=None, seed=seed + 7)
        start = t.initial if initial is None else initial
        return Trajectory(start.copy() + (0.125 if initial is None else 0), t.losses, t.kernel)


class LeftRightFlippedKernel(_Broken):
    """Reverses the kernel's columns only (on Fig. 7.2.1's ramp this looks exactly like K.T)."""

    def kernel(self, K):
        return K[:, ::-1].copy()


class ConstantOffset(_Broken):
    """Adds 1e-4 to every value: wrong, but not by rounding."""

    def output(self, Y, X, K):
        return Y + Y.dtype.type(1e-4) if Y.dtype != np.float16 else Y


class BiasMissingFromOneRow(NumpyBackend):
    def conv2d_layer(self, X, K, b):
        Y = super().conv2d_layer(X, K, b).copy()
        Y[-1] -= b
        return Y


class BiasOutsideTheModule(NumpyBackend):
    """Keeps the bias as a plain array beside the module and reports a remembered parameter dict:
    layer_parameters looks right, but the optimizer, given what the module enumerates, never moves
    the bias."""

    def layer_parameters(self, kernel_size, *, dtype, device):
        return {"weight": tuple(kernel_size), "bias": (1,)}  # remembered, not enumerated

    def layer_step(self, X, K, b, Y, *, lr):
        stepped = super().layer_step(X, K, np.zeros_like(b), Y - b, lr=lr)  # the module has the weight only
        return {"weight": stepped["weight"], "bias": b.copy()}


class UndeclaredVerbDtype(NumpyBackend):
    """Not broken: conv2d works in every dtype, but the manifest holds it to float32 only."""

    verb_dtypes = {"conv2d": ("float32",)}


class NoFloat16Conv(NumpyBackend):
    """Not broken: conv2d has no float16 kernel (it raises), and the manifest says so."""

    verb_dtypes = {"conv2d": ("float32", "float64")}

    def conv2d(self, X, K):
        if X.dtype == self.lib.float16:
            raise TypeError("no float16 kernel for conv2d")
        return super().conv2d(X, K)


# -- the general convolution (spec/general.py) ---------------------------------


class _BrokenGeneral(NumpyBackend):
    """Applies ``change`` to the parameters, ``kernel`` to K and ``output`` to the result of conv_general
    (and so of its gradients, which the NumPy reference computes through the same geometry)."""

    def change(self, params: dict) -> dict:
        return params

    def kernel(self, K, params):
        return K

    def output(self, Y, params):
        return Y

    def conv_general(self, X, K, **params):
        changed = self.change(dict(params))
        return self.output(super().conv_general(X, self.kernel(K, params), **changed), params)


class GeneralFlipped(_BrokenGeneral):
    """conv_general convolves: the kernel flipped on both axes."""

    def kernel(self, K, params):
        return K[:, :, ::-1, ::-1].copy()


class SameExtraPixelFirst(_BrokenGeneral):
    """'same' puts the extra pixel at the beginning (SAME_LOWER for SAME_UPPER)."""

    def change(self, params):
        if params["padding"] == "same":
            params["padding"] = "same_lower"
        return params


class SameAsHalfKernel(_BrokenGeneral):
    """'same' emulated as k//2 on each side (the usual hand conversion; wrong under a stride)."""

    def change(self, params):
        return params  # the kernel's size is needed: see conv_general

    def conv_general(self, X, K, **params):
        if params["padding"] in ("same", "same_lower"):
            kh, kw = K.shape[2:]
            params = {**params, "padding": ((kh // 2, kh // 2), (kw // 2, kw // 2))}
        return super().conv_general(X, K, **params)


class PadsWidthFirst(_BrokenGeneral):
    """Explicit pads read width first, as torch's F.pad takes them."""

    def change(self, params):
        if not isinstance(params["padding"], str):
            (t, b), (le, r) = params["padding"]
            params["padding"] = ((le, r), (t, b))
        return params


class PadsBeginEndSwapped(_BrokenGeneral):
    def change(self, params):
        if not isinstance(params["padding"], str):
            (t, b), (le, r) = params["padding"]
            params["padding"] = ((b, t), (r, le))
        return params


class KernelReshapedNotTransposed(_BrokenGeneral):
    """OIHW -> HWIO by reshape instead of transpose, then read back as HWIO."""

    def kernel(self, K, params):
        cout, cg, kh, kw = K.shape
        return K.reshape(kh, kw, cg, cout).transpose(3, 2, 0, 1).copy()


class KernelHWSwapped(_BrokenGeneral):
    """The kernel's height and width swapped (a non-square kernel comes out transposed)."""

    def kernel(self, K, params):
        return K.transpose(0, 1, 3, 2).copy()


class DepthwiseChannelOrder(_BrokenGeneral):
    """Depthwise with a multiplier: output channels ordered j*C + c instead of c*m + j."""

    def output(self, Y, params):
        n, cout = Y.shape[:2]
        groups = params["groups"]
        per = cout // groups
        if groups > 1 and per > 1:
            wrong = np.empty_like(Y)
            for c in range(groups):
                for j in range(per):
                    wrong[:, j * groups + c] = Y[:, c * per + j]
            return wrong
        return Y


class SymmetricForReflect(_BrokenGeneral):
    """'reflect' padding done as 'symmetric' (the edge repeated)."""

    def change(self, params):
        if params["padding_mode"] == "reflect":
            params["padding_mode"] = "symmetric"
        return params


class DilationIgnored(_BrokenGeneral):
    def change(self, params):
        params["dilation"] = (1, 1)
        return params


class NoParameterChecks(NumpyBackend):
    """Returns an empty array where the parameters are invalid (as TF and lax do for a kernel larger than
    the input), instead of raising."""

    def conv_general(self, X, K, **params):
        try:
            return super().conv_general(X, K, **params)
        except ValueError:
            return np.zeros((X.shape[0], K.shape[0], 0, 0), dtype=X.dtype)


class GradientsSwapped(NumpyBackend):
    def conv_general_vjp(self, X, K, dY, **params):
        dX, dK = super().conv_general_vjp(X, K, dY, **params)
        return dK, dX


class LastKernelRowGradient(NumpyBackend):
    """The kernel gradient's last row is the first row again (pytorch#50042's symptom)."""

    def conv_general_vjp(self, X, K, dY, **params):
        dX, dK = super().conv_general_vjp(X, K, dY, **params)
        dK = dK.copy()
        dK[:, :, -1, :] = dK[:, :, 0, :]
        return dX, dK


class ChannelsLastResultLeftNCHW(NumpyBackend):
    """Channels-last inputs handled, the result not transposed back."""

    def conv_general(self, X, K, *, layout="nchw", **params):
        if layout != "nhwc":
            return super().conv_general(X, K, **params)
        return super().conv_general(X.transpose(0, 3, 1, 2), K.transpose(3, 2, 0, 1), **params)


class ChannelsLastKernelReadAsOIHW(NumpyBackend):
    """A channels-last (HWIO) kernel's memory read as OIHW: reshaped where it must be transposed."""

    def conv_general(self, X, K, *, layout="nchw", **params):
        if layout != "nhwc":
            return super().conv_general(X, K, **params)
        kh, kw, cg, cout = K.shape
        return super().conv_general(X, np.ascontiguousarray(K).reshape(cout, cg, kh, kw).transpose(2, 3, 1, 0),
                                    layout="nhwc", **params)


class BackpropGuessesInputSize(NumpyBackend):
    """The explicit input gradient for the smallest input that gives dY's shape: what a strided backward
    infers when it is not told the input's size (torch.nn.grad.conv2d_input and TF's
    conv2d_backprop_input take it for that reason)."""

    def conv_general_backprop(self, X, K, dY, **params):
        from backends.base import general_geometry

        pads, _ = general_geometry(X.shape, K.shape, **params)
        size = [(o - 1) * s + d * (k - 1) + 1 - lo - hi
                for o, s, d, k, (lo, hi) in zip(dY.shape[2:], params["stride"], params["dilation"], K.shape[2:], pads,
                                               strict=True)]
        smallest = X[:, :, :size[0], :size[1]]
        return super().conv_general_backprop(smallest, K, dY, **{**params, "padding": pads})


# -- pooling (d2l 7.5) -----------------------------------------------------------


class _BrokenPool(NumpyBackend):
    def change(self, params: dict) -> dict:
        return params

    def pool2d(self, X, **params):
        return super().pool2d(X, **self.change(dict(params)))


class AveragesCountPadding(_BrokenPool):
    """Every average divides by the whole window, padded cells included (count_include_pad ignored)."""

    def change(self, params):
        params["count_include_pad"] = True
        return params


class PoolFloorForCeil(_BrokenPool):
    def change(self, params):
        params["ceil_mode"] = False
        return params


class MaxForAverage(_BrokenPool):
    def change(self, params):
        params["kind"] = "max"
        return params


class PoolSameAsHalfWindow(_BrokenPool):
    def change(self, params):
        if params["padding"] == "same":
            kh, kw = params["window"]
            params["padding"] = ((kh // 2, kh // 2), (kw // 2, kw // 2))
        return params


class PlainCeil(NumpyBackend):
    """Ceil output sizes without torch's last-window rule (MXNet's 'full'): one more row and column
    where the rule drops a window (here the last one again)."""

    def pool2d(self, X, **params):
        Y = super().pool2d(X, **params)
        if params["ceil_mode"] and params["stride"][0] > params["window"][0]:
            Y = np.concatenate([Y, Y[:, :, -1:]], axis=2)
            Y = np.concatenate([Y, Y[:, :, :, -1:]], axis=3)
        return Y


class PoolNoParameterChecks(NumpyBackend):
    def pool2d(self, X, **params):
        try:
            return super().pool2d(X, **params)
        except ValueError:
            return np.zeros((*X.shape[:2], 0, 0), dtype=X.dtype)


class AverageForMax(_BrokenPool):
    def change(self, params):
        params["kind"] = "avg"
        return params


# -- transposed convolution (d2l 14.10) ------------------------------------------------


class TransposeWithoutKernelFlip(NumpyBackend):
    """lax.conv_transpose's default (transpose_kernel=False): the kernel comes out rotated by 180 degrees."""

    def conv_transpose(self, X, K, **params):
        return super().conv_transpose(X, K[:, :, ::-1, ::-1].copy(), **params)


class TransposeSameAsTorchCrop(NumpyBackend):
    """TensorFlow's 'SAME' mapped onto torch's padding k//2, output_padding s-1 (keras-core#774)."""

    def conv_transpose(self, X, K, **params):
        if params["padding"] == "same":
            (kh, kw), (sh, sw) = K.shape[2:], params["stride"]
            params = {**params, "padding": ((kh // 2, kh // 2), (kw // 2, kw // 2)), "output_padding": (sh - 1, sw - 1)}
        return super().conv_transpose(X, K, **params)


class TransposeCropAsSame(NumpyBackend):
    """Explicit crops (and output_padding) mapped onto TensorFlow's 'SAME'."""

    def conv_transpose(self, X, K, **params):
        if params["padding"] != "same":
            params = {**params, "padding": "same", "output_padding": (0, 0)}
        return super().conv_transpose(X, K, **params)


class TransposeNoChecks(NumpyBackend):
    def conv_transpose(self, X, K, **params):
        try:
            return super().conv_transpose(X, K, **params)
        except ValueError:
            return np.zeros((X.shape[0], K.shape[1], 0, 0), dtype=X.dtype)


class FlushesSubnormalsUndeclared(NumpyBackend):
    """Flushes float32 subnormal inputs and results to zero (DAZ and FTZ, as XLA's CPU does) without
    declaring it."""

    def conv_general(self, X, K, **params):
        if X.dtype != np.float32:
            return super().conv_general(X, K, **params)
        tiny = np.finfo(np.float32).tiny
        X, K = (np.where(np.abs(a) < tiny, np.float32(0), a).astype(np.float32) for a in (X, K))
        Y = super().conv_general(X, K, **params)
        return np.where(np.abs(Y) < tiny, np.float32(0), Y).astype(np.float32)


# -- mistakes only generated cases find (tests/test_generated.py) -----------------------------


class WrongPastTile(NumpyBackend):
    """A tiled implementation whose second tile is wrong: the kernel flipped once the input is wider than
    10 columns (no fixed case is)."""

    def conv_general(self, X, K, **params):
        if X.shape[3] > 10:
            K = K[:, :, ::-1, ::-1].copy()
        return super().conv_general(X, K, **params)


class TallKernelTransposed(NumpyBackend):
    """A kernel taller than wide is read transposed (no fixed case has one)."""

    def conv_general(self, X, K, **params):
        if K.shape[2] > K.shape[3]:
            K = K.transpose(0, 1, 3, 2).copy()
        return super().conv_general(X, K, **params)


class StrideResidueOffByOne(NumpyBackend):
    """With a vertical stride of 3, the last output row is dropped when (n + pads - k_eff) % 3 == 2 (no
    fixed case has that residue)."""

    def conv_general(self, X, K, **params):
        Y = super().conv_general(X, K, **params)
        from backends.base import general_geometry

        ((lo, hi), _), _ = general_geometry(X.shape, K.shape, **params)
        span = X.shape[2] + lo + hi - params["dilation"][0] * (K.shape[2] - 1) - 1
        if params["stride"][0] == 3 and span % 3 == 2 and Y.shape[2] > 1:
            Y = Y[:, :, :-1]
        return Y


class Conv2dPartialTile(NumpyBackend):
    """conv2d tiled by 8 output columns, whose remainder loop for a last tile of 1 to 3 columns reads the
    kernel's columns in reverse (outputs 9 to 11 wide; no fixed case of the chapter has one): only the
    chapter-verb property finds it."""

    def conv2d(self, X, K):
        Y = super().conv2d(X, K)
        if Y.shape[1] % 8 in (1, 2, 3) and Y.shape[1] > 8:
            start = Y.shape[1] - Y.shape[1] % 8
            Y[:, start:] = super().conv2d(X[:, start:], K[:, ::-1])
        return Y


class NoManifestNoCorr2dPartialTile(Conv2dPartialTile):
    """No manifest, and no corr2d (the book's loop left out): the chapter-verb property must still run
    conv2d, whose partial last tile is wrong, rather than skip at the first verb that is missing."""

    verbs = None

    def corr2d(self, X, K):
        raise NotImplementedError("corr2d: not written yet")


class PoolSameUnclamped(NumpyBackend):
    """'same' pooling whose pad total is not clamped at 0: a negative total starts the windows inside the
    input (ONNX Runtime's mistake, findings/onnxruntime/pool_same_negative_pad)."""

    def pool2d(self, X, *, kind, window, stride, padding, ceil_mode, count_include_pad):
        if padding == "same":
            for axis, (k, s) in enumerate(zip(window, stride, strict=True), start=2):
                n = X.shape[axis]
                total = (-(-n // s) - 1) * s + k - n
                if total < 0:
                    X = np.roll(X, total // 2, axis=axis)  # the windows start -total//2 cells in
        return super().pool2d(X, kind=kind, window=window, stride=stride, padding=padding, ceil_mode=ceil_mode,
                              count_include_pad=count_include_pad)
