"""jax.lax.conv_general_dilated on the CPU flushes float32 and bfloat16 subnormals to zero; float64 keeps them.

IEEE 754 arithmetic keeps subnormal numbers (below 2**-126 in float32 and bfloat16).  XLA's CPU client runs
its computations with the x86 flush-to-zero and denormals-are-zero modes set, so subnormal inputs count as
0 and subnormal results become 0.  Inputs: multiples of 2**-130, whose sums every dtype holds exactly.
This may depend on the CPU and the build, so the script reports what this one does: exit 1 if any of
float32 / bfloat16 flushes, 0 if both keep the subnormals.
"""
import os
import sys


def could_not_run(kind, value, tb):  # an unexpected error exits 2 (could not run), not 1 (the deviation)
    sys.__excepthook__(kind, value, tb)
    sys.stdout.flush()
    os._exit(2)


sys.excepthook = could_not_run
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

jax.config.update("jax_enable_x64", True)  # for the float64 comparison
UNIT = 2.0 ** -130  # subnormal in float32 and bfloat16
X = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 1.0, 2.0]]) * UNIT
K = np.array([[1.0, 2.0], [1.0, 1.0]])


def reference(X, K):
    """'VALID' cross-correlation in NumPy loops (float64: exact here)."""
    kh, kw = K.shape
    out = np.zeros((X.shape[0] - kh + 1, X.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = sum(X[i + a, j + b] * K[a, b] for a in range(kh) for b in range(kw))
    return out


expected = reference(X, K)
cpu = jax.devices("cpu")[0]
print(f"jax {jax.__version__}, device {cpu}")
print("X / 2**-130:\n", X / UNIT, "\nK:\n", K)
print("expected / 2**-130 (NumPy loop):\n", expected / UNIT)
flushed = []
for dtype in (jnp.float32, jnp.bfloat16, jnp.float64):
    name = jnp.dtype(dtype).name
    # Converted by NumPy on the host (exact, no flush), then placed on the CPU device as is.
    x = jax.device_put(np.asarray(X.reshape(1, 1, 3, 3), dtype=dtype), cpu)
    k = jax.device_put(np.asarray(K.reshape(1, 1, 2, 2), dtype=dtype), cpu)
    assert np.array_equal(np.asarray(x).astype(np.float64)[0, 0], X), f"{name}: the input is not held exactly"
    y = jax.lax.conv_general_dilated(x, k, window_strides=(1, 1), padding="VALID")
    got = np.asarray(y).astype(np.float64)[0, 0]
    print(f"observed lax.conv_general_dilated {name} on the CPU / 2**-130 (input held exactly):\n", got / UNIT)
    if not np.array_equal(got, expected):
        flushed.append(name)
if not flushed:
    print("conforms: subnormals kept in every dtype")
    sys.exit(0)
print(f"DEVIATION: subnormals flushed to zero in {', '.join(flushed)}")
sys.exit(1)
