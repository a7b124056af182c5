"""Client.check_gradients: the CheckGradients RPC on a graph and on a model."""

from __future__ import annotations

import numpy as np
import pytest

from backflow import BackflowError, Client, GraphBuilder


def relu_graph():
    """loss = sum(relu(w * x)), w = 1: relu's kink at 0 makes the analytic gradient (0) and the
    centred difference (0.5) disagree there."""
    g = GraphBuilder("kink")
    x = g.placeholder("x", [3])
    w = g.parameter("w", [3], init=1.0)
    g.loss(g.sum(g.relu(g.mul(w, x))))
    return g.build()


def mlp_graph():
    g = GraphBuilder("mlp")
    x = g.placeholder("x", [-1, 4])
    labels = g.placeholder("labels", [-1], dtype="int64")
    h = g.tanh(g.linear(x, g.parameter("w1", [4, 5], init="glorot"),
                        g.parameter("b1", [5], init=("uniform", -0.5, 0.5))))
    logits = g.linear(h, g.parameter("w2", [5, 3], init="glorot"), g.parameter("b2", [3]))
    g.loss(g.softmax_cross_entropy(logits, labels))
    return g.build()


def test_a_correct_graph_agrees(client: Client) -> None:
    report = client.check_gradients(mlp_graph(), seed=2, batch=3)
    assert report.ok
    assert report.failed() == []
    assert report.drawn == ["b1", "b2", "labels", "w1", "w2", "x"]
    assert [t.name for t in report.tensors] == ["w1", "b1", "w2", "b2"]
    assert report.evaluations == 1 + 2 * (20 + 5 + 15 + 3)
    w1 = report["w1"]
    assert (w1.checked, w1.total, w1.shape) == (20, 20, (4, 5))
    assert w1.max_abs_error < 1e-8
    worst = w1.worst[0]
    assert worst.position == divmod(worst.index, 5)
    assert abs(worst.analytic - worst.numeric) == pytest.approx(worst.abs_error)
    assert str(report).endswith("all 4 tensors agree")


def test_a_kink_disagrees_and_is_named(client: Client) -> None:
    report = client.check_gradients(relu_graph(), inputs={"x": np.array([0.0, 2.0, -1.0])},
                                    wrt=["w", "x"], worst_k=1)
    assert not report.ok
    assert report.failed() == ["x"]
    assert report["w"].ok
    x = report["x"]
    assert (x.checked, x.total) == (3, 3)
    assert x.worst[0].index == 0
    assert x.worst[0].analytic == 0.0
    assert x.worst[0].numeric == pytest.approx(0.5, abs=1e-9)
    assert x.max_relative_error == pytest.approx(1.0)
    assert "x[0]" in str(report)
    assert str(report).endswith("1 of 2 tensors disagree: x")


def test_a_model_on_its_current_parameters(client: Client) -> None:
    info = client.create_model(mlp_graph(), lr=0.5, seed=1)
    rng = np.random.default_rng(0)
    batch = {"x": rng.uniform(-1, 1, (4, 4)).astype(np.float32),
             "labels": np.array([0, 2, 1, 2], dtype=np.int64)}
    client.train_step(info.id, batch)
    loss = client.compute_gradients(info.id, batch).loss
    report = client.check_gradients(inputs=batch, model_id=info.id, wrt=["b2"])
    assert report.ok
    assert report.drawn == []
    assert report.loss == pytest.approx(loss, rel=1e-5)


def test_errors(client: Client) -> None:
    with pytest.raises(ValueError, match="one of them"):
        client.check_gradients()
    with pytest.raises(BackflowError, match="wrt 'nope' is not in the graph"):
        client.check_gradients(relu_graph(), wrt=["nope"])
    with pytest.raises(BackflowError, match="epsilon"):
        client.check_gradients(relu_graph(), epsilon=-1.0)
