"""Author the spec's JSON files: ``python -m spec.build``.

The JSON under ``spec/cases/`` is the spec; this script is how it was written,
kept so that every value can be traced to its recipe (and its seed).  Expected
outputs come from the exact oracle (``spec.oracle``); ``tests/meta`` checks that
the committed files equal what this script writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from spec import general as spec_general
from spec import learning, oracle

CASES_DIR = Path(__file__).parent / "cases"
CHAPTER = "d2l.ai 7.2 Convolutions for Images"
ERROR_BOUND = {"rule": "error_bound", "c": 1,
               "why": "Higham's gamma bound for a k-term dot product, any summation order"}
EXACT = {"rule": "exact",
         "why": "integer data whose partial sums the dtype holds exactly; falls back to error_bound otherwise"}
THREE_BY_THREE = np.arange(9.0).reshape(3, 3)
FIG_K = np.array([[0.0, 1.0], [2.0, 3.0]])
EDGE_K = np.array([[1.0, -1.0]])
ALL_OPS = ["corr2d", "conv2d", "corr2d_matmul"]


def edge_image() -> np.ndarray:
    X = np.ones((6, 8))
    X[:, 2:6] = 0
    return X


def diagonal_image() -> np.ndarray:
    X = np.zeros((6, 6))
    for i in range(6):
        X[i, i] = X[i, 5 - i] = 1
    return X


def random_pair(seed: int, x_shape, k_shape):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, x_shape), rng.uniform(-1, 1, k_shape)


def small_ints(shape) -> np.ndarray:
    """Deterministic integers in [-3, 3] with no symmetry: a flip or a transpose shows.  For 4-D
    shapes the batch and channel indices enter too, so that channels differ."""
    if len(shape) == 4:
        n, c, i, j = np.indices(shape)
        return ((2 * n + 4 * c + 3 * i + 5 * j + 1) % 7 - 3).astype(float)
    i, j = np.indices(shape)
    return ((3 * i + 5 * j + 1) % 7 - 3).astype(float)


def correlation(case_id, source, description, X, K, *, b=None, ops=ALL_OPS, tolerance=None, seed=None):
    exact = all(np.array_equal(a, np.round(a)) for a in (X, K))
    case = {
        "id": case_id, "kind": "correlation", "source": source, "description": description,
        "ops": list(ops), "inputs": {"X": X.tolist(), "K": K.tolist()},
    }
    if b is not None:
        case["inputs"]["b"] = float(b)
    if seed is not None:
        case["seed"] = seed
    case["expected"] = oracle.corr2d(X, K, 0.0 if b is None else b).tolist()
    case["tolerance"] = tolerance or (EXACT if exact and (b is None or float(b).is_integer()) else ERROR_BOUND)
    return case


def cross_correlation():
    s = "7.2.1"
    cases = [correlation("fig_7_2_1", f"{s}, Fig. 7.2.1",
                         "the book's example: X = 0..8, K = [[0, 1], [2, 3]] gives [[19, 25], [37, 43]]",
                         THREE_BY_THREE, FIG_K)]
    for xs, ks in [((3, 3), (2, 2)), ((6, 8), (1, 2)), ((4, 4), (4, 4)), ((5, 7), (2, 3)),
                   ((7, 5), (3, 1)), ((1, 9), (1, 3)), ((5, 5), (1, 1)), ((9, 2), (4, 2))]:
        out = (xs[0] - ks[0] + 1, xs[1] - ks[1] + 1)
        cases.append(correlation(
            f"shape_{xs[0]}x{xs[1]}_k{ks[0]}x{ks[1]}", f"{s}, eq. (7.2.1)",
            f"output shape (nh-kh+1) x (nw-kw+1) = {out[0]}x{out[1]}", small_ints(xs), small_ints(ks)[::-1]))
    # One larger (the book's corr2d then returns an empty array), and two or more larger on either axis.
    for xs, ks in [((2, 2), (3, 3)), ((4, 2), (1, 3)), ((2, 5), (3, 1)), ((2, 2), (4, 4)), ((3, 5), (3, 8)),
                   ((6, 2), (9, 1))]:
        cases.append({
            "id": f"kernel_larger_{xs[0]}x{xs[1]}_k{ks[0]}x{ks[1]}", "kind": "error", "source": f"{s}, eq. (7.2.1)",
            "description": "a kernel larger than the input on an axis has no valid position: "
                           "an error, not an empty array",
            "ops": ALL_OPS, "inputs": {"X": np.ones(xs).tolist(), "K": np.ones(ks).tolist()},
            "error": "kernel_larger_than_input",
        })
    for seed, xs, ks in [(1, (7, 9), (3, 3)), (2, (5, 6), (2, 4)), (3, (8, 5), (3, 2)), (4, (16, 16), (5, 5))]:
        X, K = random_pair(seed, xs, ks)
        cases.append(correlation(
            f"random_{xs[0]}x{xs[1]}_k{ks[0]}x{ks[1]}", s,
            "seeded uniform(-1, 1) values: rounding, a dtype downcast, a flip or a transposed layout shows",
            X, K, seed=seed))
    return s, "The Cross-Correlation Operation", cases


def conv_layer():
    s = "7.2.2"
    X, K = random_pair(5, (6, 7), (2, 3))
    cases = [
        correlation("layer_fig_7_2_1_bias", s, "the book's Conv2D: corr2d(X, weight) + bias, with bias 0.5",
                    THREE_BY_THREE, FIG_K, b=0.5, ops=["conv2d_layer"], tolerance=EXACT),
        correlation("layer_random_bias", s, "Conv2D forward on seeded values, bias -0.3125",
                    X, K, b=-0.3125, ops=["conv2d_layer"], seed=5),
    ]
    for ks in [(1, 2), (3, 2)]:
        cases.append({
            "id": f"layer_parameters_{ks[0]}x{ks[1]}", "kind": "parameters", "source": s,
            "description": "weight and bias are registered with the framework's module system",
            "kernel_size": list(ks), "expected": {"weight": list(ks), "bias": [1]},
        })
    # One step of the framework's own optimizer over the parameters the module system enumerates:
    # a bias kept outside the module system does not move.  Two learning rates are powers of two (exact in
    # every dtype); the third, 0.03, is exact in no binary format, and float32's nearest value is 2.2e-8
    # (relative) below float64's: a float64 step that keeps its learning rate in float32 (an optimizer that
    # stores it as a float32 scalar, a Python float rounded on its way in) moves the weight by far more than
    # float64's error bound allows.
    Yr = np.random.default_rng(8).uniform(-1, 1, (5, 5))
    for case_id, description, (X_, K_, b_, Y_), lr in [
            ("layer_step_fig_7_2_1", "one SGD step from Fig. 7.2.1's weight and bias 0.5 towards the book's output: "
             "every residual is 0.5", (THREE_BY_THREE, FIG_K, 0.5, oracle.corr2d(THREE_BY_THREE, FIG_K)), 2.0**-6),
            ("layer_step_random", "one SGD step on seeded values", (X, K, -0.3125, Yr), 2.0**-7),
            ("layer_step_lr_0_03", "one SGD step on seeded values at learning rate 0.03, which no binary format "
             "holds exactly: held in float32 it is 0.03 * (1 - 2.2e-8)", (X, K, -0.3125, Yr), 0.03)]:
        W, c = learning.layer_step(X_, K_, b_, Y_, lr=lr)
        cases.append({
            "id": case_id, "kind": "layer_step", "source": s, "description": description,
            **({"seed": 8} if case_id != "layer_step_fig_7_2_1" else {}),
            "inputs": {"X": X_.tolist(), "K": K_.tolist(), "b": b_, "Y": Y_.tolist()}, "lr": lr,
            "expected": {"weight": W.tolist(), "bias": c.tolist()},
            "tolerance": {"rule": "error_bound", "c": 1,
                          "why": "first-order rounding bound of the residual, the gradient and the update "
                                 "(spec.learning.layer_step_bounds)"},
        })
    return s, "Convolutional Layers", cases


def edge_detection():
    s = "7.2.3"
    X = edge_image()
    return s, "Object Edge Detection in Images", [
        correlation("edge_6x8", s, "K = [[1, -1]]: +1 at the white-to-black edge (column 1), -1 at column 5",
                    X, EDGE_K),
        correlation("edge_6x8_transposed", s, "the same kernel on the transposed image: 8x5 zeros",
                    X.T.copy(), EDGE_K),
    ]


def learning_kernel():
    s = "7.2.4"
    X = edge_image()
    Y = oracle.corr2d(X, EDGE_K)
    lr, steps, initial = 3e-2, 10, np.array([[-0.5, 0.25]])
    ref = learning.replay(X, Y, initial, lr=lr, steps=steps)
    return s, "Learning a Kernel", [{
        "id": "learn_edge_kernel", "kind": "kernel_learning", "source": s,
        "description": "learn the 1x2 kernel from the edge pair: no bias, sum of squared errors, "
                       "plain gradient descent, lr 3e-2, 10 steps",
        "inputs": {"X": X.tolist(), "Y": Y.tolist()}, "target": EDGE_K.tolist(),
        "lr": lr, "steps": steps, "seed": 0, "initial": initial.tolist(),
        "expected": {"losses": ref.losses.tolist(), "kernel": ref.kernels[-1].tolist()},
        "contraction": round(learning.contraction(X, (1, 2), lr), 12),
        "tolerance": {"rule": "trajectory_bound", "c": 2,
                      "why": "first-order rounding bound of each step, propagated through the contraction; "
                             "c = 2 covers the neglected O(u^2) terms"},
    }]


def conv_vs_corr():
    s = "7.2.5"
    X, K = random_pair(6, (6, 6), (3, 3))
    return s, "Cross-Correlation and Convolution", [
        correlation("fig_7_2_1_flipped_kernel", s,
                    "K' = K flipped on both axes: strict convolution with K' is cross-correlation with K; "
                    "cross-correlation with K' is not",
                    THREE_BY_THREE, FIG_K[::-1, ::-1].copy()),
        correlation("asymmetric_random", s, "an asymmetric kernel: cross-correlation and convolution differ",
                    X, K, seed=6),
    ]


def stacked(case_id: str, description: str, X, K1, K2) -> dict:
    """Gradients through ``Z = corr(corr(X, K1), K2)``: of ``Z.sum()``, and of ``Y[0, 0]``."""
    Y = oracle.corr2d(X, K1)
    Z = oracle.corr2d(Y, K2)
    dZ_dY = oracle.corr2d_input_grad(Y.shape, K2, np.ones_like(Z))
    seed = np.zeros_like(Y)
    seed[0, 0] = 1
    return {
        "id": case_id, "kind": "receptive_field", "source": "7.2.6", "description": description,
        "inputs": {"X": X.tolist(), "K1": K1.tolist(), "K2": K2.tolist()},
        "expected": {"grad_z": oracle.corr2d_input_grad(X.shape, K1, dZ_dY).tolist(),
                     "grad_y00": oracle.corr2d_input_grad(X.shape, K1, seed).tolist()},
        "tolerance": EXACT,
    }


def receptive_field():
    s = "7.2.6"
    return s, "Feature Map and Receptive Field", [
        stacked("stacked_2x2", "two stacked 2x2 layers on the 3x3 input: the single output z sees all 9 inputs, "
                "Y[0, 0] of the first layer only its 4 window positions",
                THREE_BY_THREE, np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, -1.0], [2.0, 1.0]])),
        # Z has 3x3 = 9 elements: the gradient of Z.mean() is 1/9 of that of Z.sum(), and a wrong axis,
        # a transposed kernel or a gradient taken through one layer only all give other values.
        stacked("stacked_5x6_k2x3_k2x2", "a 2x3 then a 2x2 layer on a 5x6 input: Z is 3x3, so the gradient of "
                "Z.sum() is not that of Z.mean(); Y[0, 0] sees its 2x3 window",
                small_ints((5, 6)), np.array([[1.0, 2.0, -1.0], [3.0, -2.0, 1.0]]),
                np.array([[2.0, -1.0], [1.0, 3.0]])),
    ]


def exercises():
    s = "7.2.8"
    D, E = diagonal_image(), edge_image()
    rows = np.ones((6, 8))
    rows[1:5, :] = 0
    cols = np.ones((6, 8))
    cols[:, 1:5] = 0
    cubes = np.tile(np.arange(6.0) ** 3, (6, 1))
    X, K = random_pair(7, (5, 6), (2, 3))
    return s, "Exercises", [
        correlation("diagonal_edge_kernel", f"{s} ex. 1.1", "both diagonals set, K = [[1, -1]]", D, EDGE_K),
        correlation("diagonal_transposed_image", f"{s} ex. 1.2",
                    "the transposed diagonal image: the same as ex. 1.1 (the image is symmetric)", D.T.copy(), EDGE_K),
        correlation("diagonal_transposed_kernel", f"{s} ex. 1.3", "K transposed: a 5x6 horizontal-edge response",
                    D, EDGE_K.T.copy()),
        correlation("horizontal_edge", f"{s} ex. 2.1", "K = [[1], [-1]] finds horizontal edges", rows,
                    EDGE_K.T.copy()),
        correlation("second_derivative", f"{s} ex. 2.2", "K = [[1, -2, 1]], the smallest second-difference kernel",
                    cols, np.array([[1.0, -2.0, 1.0]])),
        correlation("laplacian", f"{s} ex. 2.2", "the 3x3 Laplacian responds most to isolated points and lines",
                    D, np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])),
        correlation("third_derivative", f"{s} ex. 2.4",
                    "order d needs d+1 taps: [-1, 3, -3, 1] on rows j**3 gives 6 everywhere", cubes,
                    np.array([[-1.0, 3.0, -3.0, 1.0]])),
        correlation("binomial_blur", f"{s} ex. 2.3",
                    "3x3 binomial blur (weights /16, exact in binary) smooths the edge image", E,
                    np.array([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16, tolerance=EXACT),
        correlation("identity_1x1", f"{s} ex. 2", "a 1x1 kernel [[1]] returns the image", X, np.ones((1, 1)),
                    seed=7),
        correlation("matmul_fig_7_2_1", f"{s} ex. 4",
                    "cross-correlation as one matrix product (im2col / Toeplitz) equals the sliding window",
                    THREE_BY_THREE, FIG_K, ops=["corr2d_matmul"]),
        correlation("matmul_random", f"{s} ex. 4", "the matrix-product form on seeded values", X, K,
                    ops=["corr2d_matmul"], seed=7),
    ]


# -- beyond 7.2: the general convolution (7.3 padding and stride, 7.4 channels; groups, dilation) ----

CONVENTIONS_CHAPTER = ("d2l.ai 7.3 Padding and Stride, 7.4 Multiple Input and Multiple Output Channels, "
                       "7.5 Pooling")
RESEARCH = "research conv-conventions.md"


def _t4(a) -> np.ndarray:
    """A 2-D array as (1, 1, H, W)."""
    a = np.asarray(a, dtype=float)
    return a.reshape((1,) * (4 - a.ndim) + a.shape)


def general(case_id, source, description, conventions, X, K, *, dY=None, **params) -> dict:
    """A general-convolution case; expected values (and gradients, with a cotangent dY) from the
    exact oracle (spec.general)."""
    X, K = _t4(X), _t4(K)
    kw = spec_general.logical(spec_general.params_of(params))  # the JSON holds logical (NCHW/OIHW) arrays
    case = {"id": case_id, "kind": "general", "source": source, "description": description,
            "conventions": list(conventions) + (["gradient"] if dY is not None else []),
            "inputs": {"X": X.tolist(), "K": K.tolist()}, "params": params,
            "expected": spec_general.conv(X, K, **kw).tolist()}
    if dY is not None:
        dY = _t4(dY)
        dX, dK = spec_general.vjp(X, K, dY, **kw)
        case["inputs"]["dY"] = dY.tolist()
        case["expected_grad"] = {"dX": dX.tolist(), "dK": dK.tolist()}
    case["tolerance"] = EXACT
    return case


def general_error(case_id, source, description, conventions, X, K, **params) -> dict:
    X, K = _t4(X), _t4(K)
    try:
        spec_general.check(X.shape, K.shape, **spec_general.params_of(params))
    except spec_general.ConvError as exc:
        why = str(exc)
    else:
        raise AssertionError(f"{case_id}: the oracle accepts these parameters")
    return {"id": case_id, "kind": "general_error", "source": source, "description": description,
            "conventions": list(conventions), "inputs": {"X": X.tolist(), "K": K.tolist()}, "params": params,
            "error": why}


def conventions():
    X3, FK = THREE_BY_THREE, FIG_K
    X4 = np.arange(1.0, 17.0).reshape(4, 4)
    X5 = np.arange(1.0, 26.0).reshape(5, 5)
    K2 = np.array([[1.0, 2.0], [3.0, 4.0]])
    K3 = np.arange(1.0, 10.0).reshape(3, 3)
    K5 = small_ints((5, 5))
    X9 = 9.0 * np.arange(9)[:, None] + np.arange(9)[None, :]
    Kd = np.zeros((3, 3))
    Kd[0, 0], Kd[2, 2] = 1.0, 10.0
    X74 = np.stack([np.arange(9.0).reshape(3, 3), np.arange(1.0, 10.0).reshape(3, 3)])[None]
    K74 = np.stack([FK, FK + 1])[None]
    same = "7.3.1, " + RESEARCH + " 1.1"
    cases = [
        general("general_fig_7_2_1", "7.2.1 as a general convolution", "Fig. 7.2.1 as (1, 1, 3, 3) and (1, 1, 2, 2), "
                "VALID, with a cotangent that is not all ones", ["valid"], X3, FK, dY=[[1.0, -2.0], [3.0, 4.0]],
                padding="valid"),
        general("same_even_upper", same, "'same' with an even kernel: the extra pixel at the end (TF, torch "
                "'same', lax 'SAME', ONNX SAME_UPPER)", ["same"], X4, K2, padding="same"),
        general("same_even_lower", same, "'same_lower': the extra pixel at the beginning (lax 'SAME_LOWER', ONNX "
                "SAME_LOWER); with same_even_upper it tells the two apart", ["same_lower"], X4, K2,
                padding="same_lower"),
        general("same_stride2_odd_residue", "7.3.2, " + RESEARCH + " case 3", "'same' under stride 2 on 5x5: pads "
                "(1, 1)", ["same_strided", "stride"], X5, K3, padding="same", stride=[2, 2]),
        general("same_stride2_even_residue", "7.3.2, " + RESEARCH + " case 3", "'same' under stride 2 on 4x4: pads "
                "(0, 1), which the usual k//2 emulation gets wrong", ["same_strided", "stride"], X4, K3,
                padding="same", stride=[2, 2]),
        general("same_dilated_even", RESEARCH + " case 4", "'same' with dilation 2 and an even kernel: total "
                "padding 2, (1, 1)", ["same", "dilation"], X4, K2, padding="same", dilation=[2, 2]),
        general("explicit_asymmetric", "7.3.1, " + RESEARCH + " case 5", "explicit pads: top 1, bottom 0, "
                "left 0, right 2 (torch F.pad takes them width first)", ["explicit"], X4, K2,
                padding=[[1, 0], [0, 2]], dY=small_ints((4, 5))),
        general("stride_floor", "7.3.2, " + RESEARCH + " case 10", "stride 2 on 5x5 with a 2x2 kernel: floor, "
                "2x2; the last row and column get no gradient", ["stride"], X5, K2, stride=[2, 2],
                dY=np.ones((2, 2))),
        general("stride_non_square", "7.3.2", "strides (3, 2) with pads (1, 1), (0, 1) on a 7x6 input and a "
                "2x3 kernel", ["stride", "explicit"], small_ints((7, 6)), small_ints((2, 3)), stride=[3, 2],
                padding=[[1, 1], [0, 1]], dY=small_ints((3, 3))),
        general("dilation_stride", RESEARCH + " case 11", "dilation 2 and stride 2 on a 9x9 ramp, two taps",
                ["dilation_strided", "dilation", "stride"], X9, Kd, stride=[2, 2], dilation=[2, 2]),
        general("dilation_grad", RESEARCH + " case 12", "dilation 2, stride 1: forward and both gradients "
                "(TensorFlow's CPU cannot differentiate a dilated tf.nn.conv2d)", ["dilation"], X9[:6, :7], Kd,
                dilation=[2, 2], dY=small_ints((2, 3))),
        general("depthwise_dilation_stride", RESEARCH + " case 11 (tensorflow#100237)", "depthwise, two channels, "
                "dilation 2 and stride 2: tf.nn.depthwise_conv2d only warns and returns other numbers",
                ["depthwise", "dilation_strided", "dilation", "stride"], np.stack([X9, X9 + 100.0])[None],
                np.stack([Kd, Kd])[:, None], stride=[2, 2], dilation=[2, 2], groups=2),
        general("depthwise_unequal_strides", "7.4, findings/keras/tensorflow_depthwise_bfloat16_unequal_strides",
                "depthwise with a multiplier of 2 (groups 2, C_out 4), a 1x3 kernel, strides (1, 2), batch 2: drawn "
                "by a generated property that Keras on TensorFlow fails in bfloat16", ["depthwise", "stride",
                "channels", "valid"], small_ints((2, 2, 3, 3)), small_ints((4, 1, 1, 3)), stride=[1, 2], groups=2),
        general("subnormal_inputs", RESEARCH + " 4, case 21", "float32 and bfloat16 subnormal inputs (multiples of "
                "2**-130), exact sums: kept by IEEE arithmetic, flushed to zero by FTZ/DAZ (XLA's CPU, TF, oneDNN's "
                "bfloat16)", ["subnormals", "valid"], 2.0**-130 * np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0],
                                                                            [7.0, 1.0, 2.0]]),
                np.array([[1.0, 2.0], [1.0, 1.0]])),
        general("subnormal_products", RESEARCH + " 4, case 21", "normal inputs (multiples of 2**-65) whose products "
                "and sums are subnormal in float32 and bfloat16", ["subnormals", "valid"],
                2.0**-65 * np.array([[1.0, 2.0, 1.0], [2.0, 1.0, 3.0], [1.0, 1.0, 2.0]]),
                2.0**-65 * np.array([[1.0, 1.0], [2.0, 1.0]])),
        general("multi_in_fig_7_4_1", "7.4.1", "two input channels summed (Fig. 7.4.1)", ["channels"], X74, K74),
        general("multi_in_out_7_4_2", "7.4.2", "three output channels: K, K + 1, K + 2", ["channels"], X74,
                np.concatenate([K74, K74 + 1, K74 + 2])),
        general("layout_discriminator", "7.4, " + RESEARCH + " case 16", "batch 2, C_in 2, C_out 3, a 4x5 input, "
                "a 2x3 kernel: an HWIO/OIHW mix-up, a height/width swap or a reshape for a transpose shows",
                ["channels"], small_ints((2, 2, 4, 5)), small_ints((3, 2, 2, 3)) - 1.0,
                dY=small_ints((2, 3, 3, 3))),
        general("groups_two", RESEARCH + " case 17", "C_in 4, C_out 6, groups 2: each group's input block makes its "
                "output block", ["groups", "channels"], small_ints((1, 4, 5, 5)), small_ints((6, 2, 3, 3)),
                groups=2, dY=small_ints((1, 6, 3, 3))),
        general("depthwise_multiplier", RESEARCH + " case 18", "depthwise, C 3, multiplier 2: output channel "
                "c*m + j", ["depthwise", "groups"], small_ints((1, 3, 4, 4)), small_ints((6, 1, 2, 2)) + 1.0,
                groups=3),
        general("depthwise_strided_backward", RESEARCH + " case 19 (pytorch#50042)", "24 channels, groups 24, "
                "stride 2, pads 1: the kernel gradient of every channel", ["depthwise", "stride", "explicit"],
                np.ones((1, 24, 6, 6)), np.ones((24, 1, 3, 3)), stride=[2, 2], padding=[[1, 1], [1, 1]],
                groups=24, dY=np.ones((1, 24, 3, 3))),
        # Channels-last (research 3, "Data layout on CPU"): the same values handed over as NHWC/HWIO.
        general("layout_nhwc", RESEARCH + " 3 and case 16", "the layout discriminator channels-last: X NHWC, "
                "K HWIO (C_in 2 != C_out 3, a 2x3 kernel), 'same' under stride (2, 1), with gradients",
                ["layout_nhwc", "channels", "same", "same_strided", "stride"], small_ints((2, 2, 4, 5)),
                small_ints((3, 2, 2, 3)) - 1.0, padding="same", stride=[2, 1], layout="nhwc",
                dY=small_ints((2, 3, 2, 5))),
        general("layout_nhwc_groups", RESEARCH + " 3 and case 17", "groups 2 channels-last: each group's input "
                "block makes its output block, with gradients", ["layout_nhwc", "groups", "channels"],
                small_ints((1, 4, 5, 5)), small_ints((6, 2, 3, 3)), groups=2, layout="nhwc",
                dY=small_ints((1, 6, 3, 3))),
        general("layout_nhwc_depthwise", RESEARCH + " 3 and case 18", "depthwise, multiplier 2, channels-last "
                "(TF's depthwise path in its own layout): output channel c*m + j", ["layout_nhwc", "depthwise",
                                                                                    "groups"],
                small_ints((1, 3, 4, 4)), small_ints((6, 1, 2, 2)) + 1.0, groups=3, layout="nhwc"),
        general("reflect_pad1", RESEARCH + " case 6", "reflect padding 1, 3x3 kernel", ["reflect", "explicit"],
                X4, K3, padding=[[1, 1], [1, 1]], padding_mode="reflect", dY=small_ints((4, 4))),
        general("replicate_pad1", RESEARCH + " case 6", "replicate padding 1 (= symmetric for pad 1)",
                ["replicate", "explicit"], X4, K3, padding=[[1, 1], [1, 1]], padding_mode="replicate"),
        general("replicate_pad2", RESEARCH + " case 6", "replicate padding 2, 5x5 kernel", ["replicate", "explicit"],
                X4, K5, padding=[[2, 2], [2, 2]], padding_mode="replicate", dY=small_ints((4, 4))),
        general("symmetric_pad2", RESEARCH + " case 6", "symmetric padding 2, 5x5 kernel: unlike replicate",
                ["symmetric", "explicit"], X4, K5, padding=[[2, 2], [2, 2]], padding_mode="symmetric",
                dY=small_ints((4, 4))),
        general("circular_stride2", RESEARCH + " case 7", "circular padding 1 under stride 2: the grid starts at "
                "padded index 0 (torch padding_mode='circular')", ["circular", "stride", "explicit"], X4, K3,
                padding=[[1, 1], [1, 1]], padding_mode="circular", stride=[2, 2], dY=small_ints((2, 2))),
        general("kernel_fits_padded_input", RESEARCH + " case 13", "a 3x3 kernel on a 2x2 input with pads 1: "
                "valid, 2x2", ["explicit"], [[1.0, 2.0], [3.0, 4.0]], K3, padding=[[1, 1], [1, 1]]),
        general_error("reflect_pad_too_large", RESEARCH + " case 8", "reflect padding 2 on a 2x2 input: an error "
                      "(NumPy and jnp.pad reflect periodically instead)", ["reflect"], [[1.0, 2.0], [3.0, 4.0]],
                      np.ones((5, 5)), padding=[[2, 2], [2, 2]], padding_mode="reflect"),
        general_error("groups_not_dividing", RESEARCH + " case 17", "C_in 4 with groups 3", ["groups"],
                      np.ones((1, 4, 4, 4)), np.ones((3, 1, 2, 2)), groups=3),
        general_error("negative_padding", RESEARCH + " 1.2", "a negative pad (lax crops, MXNet accepts it "
                      "silently)", ["explicit"], X4, K2, padding=[[-1, 0], [0, 0]]),
        general_error("kernel_exceeds_input_general", RESEARCH + " case 13", "a 3x3 kernel on a 2x2 input, "
                      "VALID (TF and lax return an empty array)", ["valid"], [[1.0, 2.0], [3.0, 4.0]], K3,
                      padding="valid"),
        general_error("dilated_kernel_exceeds_input", "7.3", "a 3x3 kernel dilated by 2 (5 wide) on a 4x4 input",
                      ["dilation"], X4, K3, dilation=[2, 2]),
    ]
    return ("7.3-7.5", "Padding, stride, dilation, channels, groups, pooling and transposed convolution",
            cases + pooling() + transposed())


def transpose(case_id, source, description, conventions, X, K, **params) -> dict:
    X, K = _t4(X), _t4(K)
    return {"id": case_id, "kind": "transpose", "source": source, "description": description,
            "conventions": list(conventions), "inputs": {"X": X.tolist(), "K": K.tolist()}, "params": params,
            "expected": spec_general.conv_transpose(X, K, **spec_general.transpose_params_of(params)).tolist(),
            "tolerance": EXACT}


def transpose_error(case_id, source, description, conventions, X, K, **params) -> dict:
    X, K = _t4(X), _t4(K)
    try:
        spec_general.transpose_check(X.shape, K.shape, **spec_general.transpose_params_of(params))
    except spec_general.ConvError as exc:
        why = str(exc)
    else:
        raise AssertionError(f"{case_id}: the oracle accepts these parameters")
    return {"id": case_id, "kind": "transpose_error", "source": source, "description": description,
            "conventions": list(conventions), "inputs": {"X": X.tolist(), "K": K.tolist()}, "params": params,
            "error": why}


def transposed():
    X, K = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 2.0], [3.0, 4.0]])
    ones = np.ones((3, 3))
    research = RESEARCH + " 5"
    return [
        transpose("conv_t_scatter_s1", "14.10.1, " + research, "every input cell scatters its kernel-weighted copy: "
                  "[[1, 4, 4], [6, 20, 16], [9, 24, 16]] (lax.conv_transpose without transpose_kernel=True flips "
                  "the kernel)", ["transpose"], X, K),
        transpose("conv_t_s2", "14.10.1, " + research, "stride 2: the copies no longer overlap", ["transpose",
                  "transpose_stride"], X, K, stride=[2, 2]),
        transpose("conv_t_k3s2_same", research + ", case 25", "the x2 upsampling k3 s2 2x2 -> 4x4, TensorFlow's "
                  "'SAME' (ONNX SAME_UPPER): rows and columns 0..3 of the 5x5 full result", ["transpose_same",
                  "transpose_stride"], X, ones, stride=[2, 2], padding="same"),
        transpose("conv_t_k3s2_crop_output_padding", research + ", case 25", "the same upsampling the torch way, "
                  "padding 1 and output_padding 1 (MXNet pad 1, adj 1): rows and columns 1..4", ["transpose_crop",
                  "transpose_stride"], X, ones, stride=[2, 2], padding=[[1, 1], [1, 1]], output_padding=[1, 1]),
        transpose("conv_t_k3s2_crop", research + ", case 25", "padding 1, no output padding: 3x3 (= Keras 'same' "
                  "with output_padding 0)", ["transpose_crop", "transpose_stride"], X, ones, stride=[2, 2],
                  padding=[[1, 1], [1, 1]]),
        transpose("conv_t_k4s2_same", "14.10", "'same' with an even total crop: k4 s2, (1, 1)", ["transpose_same",
                  "transpose_stride"], X, small_ints((4, 4)), stride=[2, 2], padding="same"),
        transpose("conv_t_k3s2_same_odd", "14.10, findings/paddle/conv2d_transpose_same_size", "'same' on a 3x3 "
                  "input, k3 s2: n*s = 6, the total crop 1 taken at the end; a 2x2 input cannot tell TensorFlow's "
                  "'SAME' from a forward convolution's SAME pads of the input (Paddle's: 5x5)", ["transpose_same",
                  "transpose_stride"], np.arange(1.0, 10.0).reshape(3, 3),
                  np.array([[1.0, 2.0, 0.0], [-1.0, 1.0, 3.0], [2.0, 0.0, 1.0]]), stride=[2, 2], padding="same"),
        transpose("conv_t_crop_past_kernel", "14.10, findings/mlx/conv_transpose_padding_past_kernel", "a 1x1 "
                  "kernel at stride (1, 2), cropped 1 at each end of the width: a crop larger than dilation*(k-1), "
                  "which reaches into the scattered copies themselves (found by a generated property on MLX)",
                  ["transpose", "transpose_stride", "transpose_crop"], np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
                  np.array([[2.0]]), stride=[1, 2], padding=[[0, 0], [1, 1]]),
        transpose("conv_t_channels_dilation", "14.10.3", "batch 2, C_in 2, C_out 3, a 2x3 kernel, strides (2, 1), "
                  "dilation (1, 2), crops (1, 0) and (0, 1)", ["transpose", "transpose_stride", "transpose_dilation",
                  "transpose_crop"], small_ints((2, 2, 3, 3)), small_ints((2, 3, 2, 3)), stride=[2, 1],
                  dilation=[1, 2], padding=[[1, 0], [0, 1]]),
        transpose("conv_t_dilation_stride", "14.10, apache/mxnet#11203", "stride 2 and dilation 2 on the same axes "
                  "(MXNet 1.9.1's CPU deconvolution places the copies wrongly)", ["transpose", "transpose_stride",
                  "transpose_dilation"], X, K, stride=[2, 2], dilation=[2, 2]),
        transpose_error("conv_t_output_padding_too_large", research + ", case 26", "output_padding 2 with stride 2 "
                        "and dilation 1", ["transpose_crop"], X, ones, stride=[2, 2], padding=[[1, 1], [1, 1]],
                        output_padding=[2, 2]),
        transpose_error("conv_t_negative_crop", research + ", case 26", "a negative padding", ["transpose_crop"], X,
                        ones, padding=[[-1, 0], [0, 0]]),
    ]


def pool(case_id, source, description, conventions, X, **params) -> dict:
    X = _t4(X)
    kw = spec_general.pool_params_of(params)
    case = {"id": case_id, "kind": "pool", "source": source, "description": description,
            "conventions": list(conventions), "inputs": {"X": X.tolist()}, "params": params,
            "expected": spec_general.pool(X, **kw).tolist()}
    case["tolerance"] = EXACT if params["kind"] == "max" else POOL_AVERAGE
    return case


def pool_error(case_id, source, description, conventions, X, **params) -> dict:
    X = _t4(X)
    try:
        spec_general.pool_check(X.shape, **spec_general.pool_params_of(params))
    except spec_general.ConvError as exc:
        why = str(exc)
    else:
        raise AssertionError(f"{case_id}: the oracle accepts these parameters")
    return {"id": case_id, "kind": "pool_error", "source": source, "description": description,
            "conventions": list(conventions), "inputs": {"X": X.tolist()}, "params": params, "error": why}


POOL_AVERAGE = {"rule": "error_bound", "c": 1,
                "why": "an average: a sum of k terms (Higham's gamma bound) and one division, each rounding once "
                       "(gamma_{k+2} of the mean of |X|); exact where the dtype holds every partial sum and the "
                       "quotient"}


def pooling():
    X3 = THREE_BY_THREE
    X4 = np.arange(16.0).reshape(4, 4)
    X41 = np.arange(1.0, 17.0).reshape(4, 4)
    X5 = np.arange(1.0, 26.0).reshape(5, 5)
    return [
        pool("pool_max_fig_7_5_1", "7.5.1", "Fig. 7.5.1: 2x2 maximum pooling, stride 1", ["pool_max"], X3,
             kind="max", window=[2, 2], stride=[1, 1]),
        pool("pool_avg_7_5_1", "7.5.1", "2x2 average pooling, stride 1", ["pool_avg"], X3, kind="avg",
             window=[2, 2], stride=[1, 1]),
        pool("pool_max_default_stride", "7.5.2", "3x3 window, stride = window (the frameworks' default)",
             ["pool_max"], X4, kind="max", window=[3, 3], stride=[3, 3]),
        pool("pool_max_pad1_stride2", "7.5.2", "3x3 window, padding 1, stride 2", ["pool_max", "pool_padding"],
             X4, kind="max", window=[3, 3], stride=[2, 2], padding=[[1, 1], [1, 1]]),
        pool("pool_max_rectangular", "7.5.2", "2x3 window, padding (0, 1), stride (2, 3)",
             ["pool_max", "pool_padding"], X4, kind="max", window=[2, 3], stride=[2, 3], padding=[[0, 0], [1, 1]]),
        pool("pool_max_channels", "7.5.3", "two channels (X, X + 1) pooled separately, batch 2",
             ["pool_max", "pool_padding"], np.stack([np.stack([X4, X4 + 1]), np.stack([X4 + 2, X4 - 3])]),
             kind="max", window=[3, 3], stride=[2, 2], padding=[[1, 1], [1, 1]]),
        pool("pool_avg_include_pad", "7.5.2", "3x3 average, padding 1, stride 2, the padded cells counted "
             "(torch's default)", ["pool_avg", "pool_padding", "pool_include_pad"], X41, kind="avg",
             window=[3, 3], stride=[2, 2], padding=[[1, 1], [1, 1]], count_include_pad=True),
        pool("pool_avg_exclude_pad", "7.5.2", "the same over the input cells only", ["pool_avg", "pool_padding",
             "pool_exclude_pad"], X41, kind="avg", window=[3, 3], stride=[2, 2], padding=[[1, 1], [1, 1]],
             count_include_pad=False),
        pool("pool_max_asymmetric", "7.5.2", "padding top 0, bottom 1, left 1, right 0", ["pool_max",
             "pool_asymmetric"], X41, kind="max", window=[2, 2], stride=[2, 2], padding=[[0, 1], [1, 0]]),
        pool("pool_avg_asymmetric_include_pad", "7.5.2, findings/paddle/avg_pool2d_asymmetric_include_pad",
             "2x2 average, stride 1, padding (0, 1) on both axes, the padded cells counted: the last windows reach "
             "into the trailing pad and still divide by 4", ["pool_avg", "pool_asymmetric", "pool_include_pad"],
             np.arange(1.0, 10.0).reshape(3, 3), kind="avg", window=[2, 2], stride=[1, 1],
             padding=[[0, 1], [0, 1]], count_include_pad=True),
        pool("pool_max_same_stride_past_window", "7.5.2, findings/onnxruntime/pool_same_negative_pad", "'same' "
             "with a 1x1 window at stride (3, 1) on 3x3: the pad total (ceil(n/s)-1)*s + k - n is -2, clamped to 0, "
             "so the output is row 0", ["pool_max", "pool_same"], np.arange(1.0, 10.0).reshape(3, 3), kind="max",
             window=[1, 1], stride=[3, 1], padding="same"),
        pool("pool_avg_same_stride_past_window", "7.5.2, findings/onnxruntime/pool_same_negative_pad", "the same "
             "average: row 0, not row 1", ["pool_avg", "pool_same", "pool_exclude_pad"],
             np.arange(1.0, 10.0).reshape(3, 3), kind="avg", window=[1, 1], stride=[3, 1], padding="same",
             count_include_pad=False),
        pool("pool_max_ceil", "7.5.2", "5x5, 2x2 window, stride 2: ceil gives 3x3, floor 2x2",
             ["pool_max", "pool_ceil"], X5, kind="max", window=[2, 2], stride=[2, 2], ceil_mode=True),
        pool("pool_avg_ceil", "7.5.2", "the same average: the last windows hold 2 and 1 cells",
             ["pool_avg", "pool_ceil"], X5, kind="avg", window=[2, 2], stride=[2, 2], ceil_mode=True),
        pool("pool_max_ceil_last_window", "7.5.2", "4x4, 2x2 window, stride 3, padding 1, ceil: a third window "
             "would start past the input and the leading pad, so there are two", ["pool_max", "pool_ceil",
             "pool_padding"], X41, kind="max", window=[2, 2], stride=[3, 3], padding=[[1, 1], [1, 1]],
             ceil_mode=True),
        pool("pool_max_same", "7.5.2", "'same' maximum pooling, 3x3 window, stride 2 on 4x4: pads (0, 1)",
             ["pool_max", "pool_same"], X41, kind="max", window=[3, 3], stride=[2, 2], padding="same"),
        pool("pool_avg_same", "7.5.2", "'same' average pooling, 2x2 window, stride 1, over the input cells "
             "(TensorFlow's 'SAME')", ["pool_avg", "pool_same", "pool_exclude_pad"], X41, kind="avg",
             window=[2, 2], stride=[1, 1], padding="same", count_include_pad=False),
        pool_error("pool_window_exceeds_input", "7.5", "a 3x3 window on a 2x2 input, no padding", ["pool_max"],
                   [[1.0, 2.0], [3.0, 4.0]], kind="max", window=[3, 3], stride=[1, 1]),
    ]


SECTIONS = {
    "cross_correlation": cross_correlation, "conv_layer": conv_layer, "edge_detection": edge_detection,
    "learning_kernel": learning_kernel, "conv_vs_corr": conv_vs_corr, "receptive_field": receptive_field,
    "exercises": exercises, "conventions": conventions,
}


def render(name: str) -> str:
    section, title, cases = SECTIONS[name]()
    chapter = CONVENTIONS_CHAPTER if name == "conventions" else CHAPTER
    doc = {"$schema": "../schema.json", "chapter": chapter, "section": section, "title": title, "cases": cases}
    return json.dumps(doc, indent=1) + "\n"


def main() -> None:
    CASES_DIR.mkdir(exist_ok=True)
    for name in SECTIONS:
        (CASES_DIR / f"{name}.json").write_text(render(name))


if __name__ == "__main__":
    main()
