"""torch.nn.functional.conv2d in bfloat16 on the CPU flushes subnormal inputs to zero (on CPUs with AVX-512 BF16).

IEEE 754 arithmetic keeps subnormal numbers (below 2**-126 in bfloat16 and float32); torch keeps them in
float32 and float64.  In bfloat16 the CPU convolution goes to oneDNN, whose kernels for CPUs with the
AVX-512 BF16 / AMX instructions (VDPBF16PS and the AMX tiles treat subnormal bfloat16 inputs as 0) give 0.
Measured on such a CPU: with ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI (or AVX2) set before the run, or with
torch.backends.mkldnn.enabled = False, the subnormals are kept.  So this depends on the CPU: the script
reports what this one does: exit 1 if bfloat16 flushes, 0 if it keeps the subnormals.
"""
import os
import sys


def could_not_run(kind, value, tb):  # an unexpected error exits 2 (could not run), not 1 (the deviation)
    sys.__excepthook__(kind, value, tb)
    sys.stdout.flush()
    os._exit(2)


sys.excepthook = could_not_run
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

UNIT = 2.0 ** -130  # subnormal in bfloat16 and float32
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
print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
      f"oneDNN {'available' if torch.backends.mkldnn.is_available() else 'absent'}, "
      f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')}")
print("X / 2**-130:\n", X / UNIT, "\nK:\n", K)
print("expected / 2**-130 (NumPy loop):\n", expected / UNIT)
results = {}
for dtype in (torch.bfloat16, torch.float32):
    x, k = torch.tensor(X, dtype=dtype)[None, None], torch.tensor(K, dtype=dtype)[None, None]
    assert np.array_equal(x.double().numpy()[0, 0], X), f"{dtype}: the input is not held exactly"
    results[dtype] = F.conv2d(x, k).double().numpy()[0, 0]
    print(f"observed F.conv2d {str(dtype).removeprefix('torch.')} on the CPU / 2**-130 (input held exactly):\n",
          results[dtype] / UNIT)
if np.array_equal(results[torch.bfloat16], expected):
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    capped = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() in ("AVX2", "AVX512_CORE", "AVX512_CORE_VNNI")
    if capped or not any(f in flags for f in ("avx512_bf16", "amx_bf16")):
        print("does not apply here: this CPU (or the ISA cap) has no AVX-512 BF16 / AMX kernels, which flush")
        sys.exit(3)
    print("conforms: bfloat16 keeps the subnormals on this CPU")
    sys.exit(0)
print("DEVIATION: bfloat16 subnormals flushed to zero")
sys.exit(1)
