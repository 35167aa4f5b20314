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
    """Deterministic integers in [-3, 3] with no symmetry: a flip or a transpose shows."""
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
    # a bias kept outside the module system does not move.  Learning rates are powers of two.
    Yr = np.random.default_rng(8).uniform(-1, 1, (5, 5))
    for case_id, description, (X_, K_, b_, Y_), lr in [
            ("layer_step_fig_7_2_1", "one SGD step from Fig. 7.2.1's weight and bias 0.5 towards the book's output: "
             "every residual is 0.5", (THREE_BY_THREE, FIG_K, 0.5, oracle.corr2d(THREE_BY_THREE, FIG_K)), 2.0**-6),
            ("layer_step_random", "one SGD step on seeded values", (X, K, -0.3125, Yr), 2.0**-7)]:
        W, c = learning.layer_step(X_, K_, b_, Y_, lr=lr)
        cases.append({
            "id": case_id, "kind": "layer_step", "source": s, "description": description,
            **({"seed": 8} if case_id == "layer_step_random" else {}),
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


SECTIONS = {
    "cross_correlation": cross_correlation, "conv_layer": conv_layer, "edge_detection": edge_detection,
    "learning_kernel": learning_kernel, "conv_vs_corr": conv_vs_corr, "receptive_field": receptive_field,
    "exercises": exercises,
}


def render(name: str) -> str:
    section, title, cases = SECTIONS[name]()
    doc = {"$schema": "../schema.json", "chapter": CHAPTER, "section": section, "title": title, "cases": cases}
    return json.dumps(doc, indent=1) + "\n"


def main() -> None:
    CASES_DIR.mkdir(exist_ok=True)
    for name in SECTIONS:
        (CASES_DIR / f"{name}.json").write_text(render(name))


if __name__ == "__main__":
    main()
