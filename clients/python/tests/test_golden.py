"""The seeds' worked examples (models/seeds/*.pbtxt) through Evaluate: the forward value and the
gradient of every input and parameter, against the GOLDEN values of tests/engine/golden_test.cc.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from backflow import Client, GraphBuilder, load_graph


class GoldenCase(NamedTuple):
    file: str
    inputs: dict[str, float]  # placeholders; parameters come from their initializers
    output: float
    gradients: dict[str, float]  # d(loss)/d(name), placeholders and parameters


_SIGMOID_NEURON_GRADIENTS = {"w0": -0.1966119332, "w1": -0.3932238665, "w2": 0.1966119332,
                             "x0": 0.3932238665, "x1": -0.5898357997}

CASES = [
    GoldenCase("add_mul", {"x": -2, "y": 5, "z": -4}, -12, {"x": -4, "y": -4, "z": 3}),
    GoldenCase("routing", {"x": 3, "y": -4, "z": 2, "w": -1}, -20,
               {"x": -8, "y": 6, "z": 2, "w": 0}),
    GoldenCase("sigmoid_neuron_gates", {"x0": -1, "x1": -2}, 0.7310585786,
               _SIGMOID_NEURON_GRADIENTS),
    GoldenCase("sigmoid_neuron_fused", {"x0": -1, "x1": -2}, 0.7310585786,
               _SIGMOID_NEURON_GRADIENTS),
    GoldenCase("staged", {"x": 3, "y": -4}, 1.5456448841, {"x": 2.0595697956, "y": 1.5922327515}),
    GoldenCase("inverse_square", {"x": 2}, 0.25, {"x": -0.25}),
    GoldenCase("two_paths", {"x": 2}, 0.5, {"x": -0.25}),
]

# The golden values carry 10 significant digits; float32 arithmetic keeps about 7.
TOLERANCE = {"float64": 1e-9, "float32": 1e-5}


def relative_error(actual: float, expected: float) -> float:
    """|a - e| / |e|, or |a| when the expected value is exactly zero."""
    return abs(actual) if expected == 0 else abs(actual - expected) / abs(expected)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=[c.file for c in CASES])
def test_seed_matches_golden_values(client: Client, source_dir: Path, case: GoldenCase,
                                    dtype: str) -> None:
    graph = source_dir / "models" / "seeds" / f"{case.file}.pbtxt"
    outputs, gradients = client.evaluate(graph, case.inputs, wrt=sorted(case.gradients),
                                         seed=7, dtype=dtype)
    loss = load_graph(str(graph)).loss  # each seed's only output is its loss
    assert set(outputs) == {loss}
    value = outputs[loss]
    assert value.shape == () and value.dtype == np.dtype(dtype)
    assert relative_error(float(value), case.output) <= TOLERANCE[dtype], \
        f"output {float(value)!r}, expected {case.output}"
    assert set(gradients) == set(case.gradients)
    for name, expected in case.gradients.items():
        actual = gradients[name]
        assert actual.shape == () and actual.dtype == np.dtype(dtype)
        assert relative_error(float(actual), expected) <= TOLERANCE[dtype], \
            f"d/d{name} = {float(actual)!r}, expected {expected}"


def test_evaluate_differentiates_an_inner_node_and_picks_outputs(client: Client,
                                                                 source_dir: Path) -> None:
    # staged: f = num * invden, so df/dnum = invden and df/dinvden = num.
    graph = source_dir / "models" / "seeds" / "staged.pbtxt"
    x, y = 3.0, -4.0
    outputs, gradients = client.evaluate(graph, {"x": np.float64(x), "y": np.float64(y)},
                                         outputs=["num", "invden"], target="f",
                                         wrt=["num", "invden"])
    num = x + 1 / (1 + np.exp(-y))
    invden = 1 / (1 / (1 + np.exp(-x)) + (x + y) ** 2)
    assert set(outputs) == {"num", "invden"}
    assert outputs["num"].dtype == np.float64  # float64 arrays select float64 evaluation
    assert relative_error(float(outputs["num"]), num) <= 1e-12
    assert relative_error(float(outputs["invden"]), invden) <= 1e-12
    assert relative_error(float(gradients["num"]), invden) <= 1e-12
    assert relative_error(float(gradients["invden"]), num) <= 1e-12


def test_evaluate_broadcast_matmul_and_3d_linear(client: Client) -> None:
    # matmul broadcasts batch dimensions as np.matmul; linear treats every leading index as a row.
    g = GraphBuilder()
    a = g.placeholder("a", (2, 1, 2, 3))
    b = g.parameter("b", (3, 3, 2))
    y = g.matmul(a, b, name="y")
    x = g.placeholder("x", (2, 2, 3))
    w = g.parameter("w", (3, 2))
    z = g.linear(x, w, name="z")
    g.output(y, z)
    g.loss(g.add(g.sum(y), g.sum(z), name="L"))
    va = np.arange(12, dtype=np.float64).reshape(2, 1, 2, 3) * 0.5 - 3
    vb = np.arange(18, dtype=np.float64).reshape(3, 3, 2) * 0.25 - 2
    vx = np.arange(12, dtype=np.float64).reshape(2, 2, 3) * 0.5 - 2
    vw = np.arange(6, dtype=np.float64).reshape(3, 2) - 2.5
    outputs, gradients = client.evaluate(g, {"a": va, "b": vb, "x": vx, "w": vw},
                                         outputs=["y", "z"], wrt=["b", "w"])
    assert outputs["y"].shape == (2, 3, 2, 2)
    np.testing.assert_allclose(outputs["y"], np.matmul(va, vb), rtol=1e-12)
    np.testing.assert_allclose(outputs["z"], vx @ vw, rtol=1e-12)
    # d sum(a @ b) / d b[j, k, n] sums a[i, 0, m, k] over every batch i and row m that b[j]
    # was multiplied with: b's gradient is summed over the dimension it was broadcast along.
    np.testing.assert_allclose(gradients["b"], np.broadcast_to(
        va.sum(axis=(0, 1, 2))[None, :, None], (3, 3, 2)), rtol=1e-12)
    np.testing.assert_allclose(gradients["w"], np.broadcast_to(
        vx.reshape(-1, 3).sum(axis=0)[:, None], (3, 2)), rtol=1e-12)
