"""keras-torch: keras.ops.pad(mode="reflect" or "symmetric") on a 4-D tensor raises NotImplementedError
when no axis but the last is padded (or none is), where keras-jax and keras-tensorflow pad (or return
the input unchanged).

keras' torch pad drops the trailing axes whose widths are zero from the torch pad list, so a 4-D NCHW
tensor padded on W alone (or not at all) reaches torch.nn.functional.pad with a 2-entry (or 0-entry)
list, which torch refuses for a 4-D input in a non-constant mode.  A convolution with
padding_mode="reflect" and padding "valid", or with pads on the width only, then fails.
Related upstream: https://github.com/keras-team/keras/issues/20347 (the same truncation on 5-D tensors,
closed as a torch limitation).

Run: python torch_reflect_pad_last_axis_only.py [engine]   (default engine: torch)
Exits 1 while the deviation is present, 0 once it is gone.
"""
import os
import sys

os.environ["KERAS_BACKEND"] = sys.argv[1] if len(sys.argv) > 1 else "torch"

import keras  # noqa: E402
import numpy as np  # noqa: E402

X = np.array([[[[2.0, 1.0, 0.0], [-2.0, -1.0, -3.0], [-3.0, -3.0, -2.0]]]], dtype=np.float32)  # NCHW
print(f"keras {keras.__version__} on {keras.backend.backend()}")
print("input X[0, 0]:\n", X[0, 0])
failed = False
for mode in ("reflect", "symmetric"):
    for widths in (((0, 0), (0, 0), (0, 0), (0, 0)), ((0, 0), (0, 0), (0, 0), (1, 1))):
        expected = np.pad(X, widths, mode=mode)
        try:
            observed = keras.ops.convert_to_numpy(keras.ops.pad(keras.ops.convert_to_tensor(X), widths, mode=mode))
        except Exception as exc:  # noqa: BLE001
            print(f"mode={mode!r} pad_width={widths}: expected\n{expected[0, 0]}\n  observed {type(exc).__name__}: "
                  f"{' '.join(str(exc).split())[:220]}")
            failed = True
            continue
        same = observed.shape == expected.shape and np.array_equal(observed, expected)
        print(f"mode={mode!r} pad_width={widths}: expected\n{expected[0, 0]}\n  observed\n{observed[0, 0]}"
              f"{'' if same else '  <-- differs'}")
        failed |= not same
if failed:
    print("DEVIATION: keras.ops.pad refuses (or mis-pads) a non-constant pad of the last axis only")
    sys.exit(1)
print("OK: every pad as numpy.pad")
