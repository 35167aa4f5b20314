"""keras-tensorflow: keras.ops.depthwise_conv in bfloat16 with unequal strides (1, 2) returns garbage.

On the tensorflow engine, a bfloat16 depthwise convolution with strides=(1, 2) returns wrong numbers (here:
rows past the first wrong or zero; in the suite's runs also NaN and 1e+26, varying between processes), where
float16 and float32 give the exact result (small integers, exact in bfloat16) and keras-torch and keras-jax
are exact in bfloat16.  Only on TensorFlow's oneDNN path (on by itself on CPUs with AVX-512 VNNI/BF16 or AMX);
without it TF refuses unequal depthwise strides (exit 3: not this CPU's path).

Run: python tensorflow_depthwise_bfloat16_unequal_strides.py [engine]   (default engine: tensorflow)
Exits 1 while the deviation is present, 0 once it is gone.
"""
import os
import sys

os.environ["KERAS_BACKEND"] = sys.argv[1] if len(sys.argv) > 1 else "tensorflow"

import keras  # noqa: E402
import numpy as np  # noqa: E402

rng = np.random.default_rng(0)
X = rng.integers(-3, 4, (2, 3, 3, 2)).astype(np.float32)  # NHWC, small integers (exact in bfloat16)
K = rng.integers(-3, 4, (1, 3, 2, 2)).astype(np.float32)  # (kh, kw, C_in, multiplier)
# The definition: Y[n, i, j, c*m + q] = sum_b X[n, i, 2j + b, c] K[0, b, c, q]  (strides (1, 2), 'valid').
expected = np.zeros((2, 3, 1, 4), np.float32)
for c in range(2):
    for q in range(2):
        expected[:, :, 0, c * 2 + q] = sum(X[:, :, b, c] * K[0, b, c, q] for b in range(3))
print(f"keras {keras.__version__} on {keras.backend.backend()}")
print("X (NHWC) [0, :, :, 0]:\n", X[0, :, :, 0], "\nK[0, :, 0, 0]:", K[0, :, 0, 0])
print("keras.ops.depthwise_conv(X, K, strides=(1, 2), padding='valid') in bfloat16, 5 calls")
print("expected [0, :, 0, :]:\n", expected[0, :, 0, :])
failed = False
for call in range(5):
    try:
        y = keras.ops.depthwise_conv(keras.ops.convert_to_tensor(X, dtype="bfloat16"),
                                     keras.ops.convert_to_tensor(K, dtype="bfloat16"), strides=(1, 2), padding="valid")
    except Exception as exc:  # noqa: BLE001  (TF without oneDNN: DepthwiseConv2dNative takes equal strides only)
        print(f"observed: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
        print("NOT HERE: this CPU/build does not take TensorFlow's oneDNN path (TF_ENABLE_ONEDNN_OPTS, or a CPU where "
              "TF leaves oneDNN off): the op is refused, not miscomputed")
        sys.exit(3)
    observed = keras.ops.convert_to_numpy(keras.ops.cast(y, "float32"))
    same = observed.shape == expected.shape and np.array_equal(observed, expected)
    if not same:
        print(f"call {call}: observed [0, :, 0, :]:\n", observed[0, :, 0, :], "  <-- differs")
    failed |= not same
if failed:
    print("DEVIATION: bfloat16 depthwise_conv with strides (1, 2) is wrong")
    sys.exit(1)
print("OK: exact in every call")
