"""ONNX Runtime's pooling with auto_pad='SAME_UPPER' where the window is shorter than the stride's remainder.
ORT computes the pad total (ceil(n/s) - 1) * s + k - n, negative here (3x3 input, window 1, stride 3 on the
height: (1 - 1) * 3 + 1 - 3 = -2), and uses it as is: MaxPool refuses its own negative pads ("padding values
must be non-negative"), AveragePool starts at pad_head = -2 / 2 = -1 and returns row 1 instead of row 0.
ONNX's SAME rule (output ceil(n / s) = 1 row; TensorFlow's 'SAME'; the suite's spec) pads nothing here: the
expected result is row 0.  Measured with ORT 1.31 (x86-64): MaxPool raises for every negative total, AveragePool
is wrong for totals <= -2 (a total of -1 truncates to pad_head 0).  The pad computation is
microsoft/onnxruntime#10086 (open); microsoft/onnxruntime#32076 added a non-negative check on pooling pads.

Exits 1 while ORT refuses (or gives anything else), 0 once it returns the expected values.
"""

import sys

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

X = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
expected = X[:, :, ::3, :]  # window (1, 1), stride (3, 1): rows 0 only, every column
failed = False
for op in ("MaxPool", "AveragePool"):
    node = helper.make_node(op, ["X"], ["Y"], kernel_shape=[1, 1], strides=[3, 1], auto_pad="SAME_UPPER")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 1, 3, 3])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)], ir_version=10)
    print(f"onnxruntime {ort.__version__}: {op}(kernel_shape=[1, 1], strides=[3, 1], auto_pad='SAME_UPPER')")
    print("X =", X[0, 0].tolist(), " expected =", expected[0, 0].tolist())
    try:
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        got = session.run(None, {"X": X})[0]
        print("observed =", got[0, 0].tolist())
        failed |= got.shape != expected.shape or not np.array_equal(got, expected)
    except Exception as exc:  # ORT raises its own exception classes
        print("observed: raised", type(exc).__name__, str(exc).splitlines()[0][-160:])
        failed = True
sys.exit(1 if failed else 0)
