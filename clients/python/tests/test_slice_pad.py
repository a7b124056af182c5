"""slice and pad on the server: values against NumPy's slicing and np.pad, gradients, and the
errors for the open batch dimension."""

from __future__ import annotations

import random

import numpy as np
import pytest

from backflow import BackflowError, Client, GraphBuilder

SENTINELS = [2**63 - 1, -2**63, 2**31 - 1, -2**31]  # what exporters write for "to the end"


def test_slice_matches_numpy_slicing(client: Client) -> None:
    """Random starts, ends, steps and axes (some negative, some sentinels): ONNX Slice clamps as
    Python slicing does, except for a start below -dim with a negative step, which the spec
    clamps to 0 (and Python to "before 0"); those starts are moved to -dim here."""
    rng = random.Random(5)
    x = np.arange(4 * 5 * 6, dtype=np.float64).reshape(4, 5, 6)
    g = GraphBuilder("slices")
    xp = g.placeholder("x", [4, 5, 6])
    expected = {}
    for t in range(200):
        axes = rng.sample([0, 1, 2], rng.randint(1, 3))
        starts, ends, steps = [], [], []
        index = [slice(None)] * 3
        for a in axes:
            dim = x.shape[a]
            start, end = (rng.choice(SENTINELS) if rng.random() < 0.15 else
                          rng.randint(-dim - 3, dim + 3) for _ in range(2))
            step = rng.choice([1, 2, 3, -1, -2, -4, 7, -7, 2**63 - 1, -2**63])
            if step < 0 and start < -dim:
                start = -dim
            starts.append(start)
            ends.append(end)
            steps.append(step)
            index[a] = slice(start, end, step)
        axes = [a - 3 if rng.random() < 0.3 else a for a in axes]
        expected[g.slice(xp, starts, ends, axes=axes, steps=steps, name=f"s{t}")] = x[tuple(index)]
    outputs, _ = client.evaluate(g.build(), {"x": x}, outputs=list(expected))
    for name, want in expected.items():
        assert outputs[name].shape == want.shape, name
        np.testing.assert_array_equal(outputs[name], want, err_msg=name)


def test_pad_matches_numpy_pad_after_cropping(client: Client) -> None:
    rng = random.Random(6)
    x = np.arange(3 * 4 * 5, dtype=np.float64).reshape(3, 4, 5) + 1
    g = GraphBuilder("pads")
    xp = g.placeholder("x", [3, 4, 5])
    expected = {}
    for t in range(100):
        pads = []
        for dim in x.shape:
            begin, end = rng.randint(-dim, 3), rng.randint(-dim, 3)
            while dim + begin + end < 0:
                begin, end = rng.randint(-dim, 3), rng.randint(-dim, 3)
            pads.append((begin, end))
        kept = tuple(slice(max(0, -b), d - max(0, -e)) for (b, e), d in zip(pads, x.shape))
        want = np.pad(x[kept], [(max(0, b), max(0, e)) for b, e in pads], constant_values=-3.5)
        flat = [b for b, _ in pads] + [e for _, e in pads]
        expected[g.pad(xp, flat, value=-3.5, name=f"p{t}")] = want
    outputs, _ = client.evaluate(g.build(), {"x": x}, outputs=list(expected))
    for name, want in expected.items():
        assert outputs[name].shape == want.shape, name
        np.testing.assert_array_equal(outputs[name], want, err_msg=name)


def slice_pad_graph():
    """loss = sum(p^2), p = pad(x[:, ::-2, 1::2]) with the first column cropped, a row added
    before and two columns after (0.5)."""
    g = GraphBuilder("slice_pad")
    x = g.placeholder("x", [-1, 3, 4])
    s = g.slice(x, starts=[0, -1, 1], ends=[2**63 - 1, -2**63, 2**63 - 1], steps=[1, -2, 2],
                name="s")
    p = g.pad(s, pads=[0, 1, -1, 0, 0, 2], value=0.5, name="p")
    g.loss(g.sum(g.square(p)))
    return g.build()


def test_slice_and_pad_values_and_gradients(client: Client) -> None:
    x = np.arange(24, dtype=np.float64).reshape(2, 3, 4) - 10
    outputs, gradients = client.evaluate(slice_pad_graph(), {"x": x}, outputs=["s", "p"],
                                         wrt=["x"])
    s = x[:, ::-2, 1::2]
    p = np.pad(s[:, :, 1:], [(0, 0), (1, 0), (0, 2)], constant_values=0.5)
    np.testing.assert_array_equal(outputs["s"], s)
    np.testing.assert_array_equal(outputs["p"], p)
    dx = np.zeros_like(x)
    dx[:, ::-2, 3] = 2 * s[:, :, 1]  # the cropped column of s (x's column 1) gets no gradient
    np.testing.assert_array_equal(gradients["x"], dx)
    assert client.check_gradients(slice_pad_graph(), wrt=["x"], batch=3).ok


def test_slicing_or_padding_the_open_batch_names_the_node(client: Client) -> None:
    g = GraphBuilder("bad")
    x = g.placeholder("x", [-1, 3])
    g.loss(g.sum(g.slice(x, starts=[1], ends=[2**63 - 1], name="rows")))
    with pytest.raises(BackflowError, match="node 'rows': cannot slice the open batch dimension"):
        client.evaluate(g.build(), {"x": np.ones((2, 3))})
    g = GraphBuilder("bad")
    x = g.placeholder("x", [-1, 3])
    g.loss(g.sum(g.pad(x, pads=[1, 0, 0, 0], name="padded")))
    with pytest.raises(BackflowError, match="node 'padded': cannot pad the open batch dimension"):
        client.evaluate(g.build(), {"x": np.ones((2, 3))})
