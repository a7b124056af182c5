"""Training and inference mode through the server: dropout drops only in training, and a
training step's mask is a function of the model's seed, the step and the node."""

from __future__ import annotations

import numpy as np
import pytest

from backflow import Client, GraphBuilder


def dropout_model():
    g = GraphBuilder("dropout")
    x = g.placeholder("x", [-1, 64])
    w = g.parameter("w", [64], init=1.0)
    h = g.dropout(g.mul(x, w), p=0.5, name="drop")
    g.output(h)
    g.loss(g.sum(h))
    return g.build()


X = np.arange(1, 2 * 64 + 1, dtype=np.float32).reshape(2, 64)


def test_evaluate_mode_decides_whether_dropout_drops(client: Client) -> None:
    graph = dropout_model()
    inference, _ = client.evaluate(graph, {"x": X}, outputs=["drop"], mode="inference")
    np.testing.assert_array_equal(inference["drop"], X)
    training, _ = client.evaluate(graph, {"x": X}, outputs=["drop"], mode="training", seed=5)
    kept = training["drop"] != 0
    assert 0.3 < kept.mean() < 0.7
    np.testing.assert_array_equal(training["drop"][kept], 2 * X[kept])
    again, _ = client.evaluate(graph, {"x": X}, outputs=["drop"], mode="training", seed=5)
    np.testing.assert_array_equal(again["drop"], training["drop"])
    # Unspecified: inference for outputs alone, training when gradients are asked for.
    plain, _ = client.evaluate(graph, {"x": X}, outputs=["drop"])
    np.testing.assert_array_equal(plain["drop"], X)
    _, grads = client.evaluate(graph, {"x": X}, wrt=["w"], seed=5)
    np.testing.assert_allclose(grads["w"], (2 * X * kept).sum(axis=0), rtol=1e-6)


def test_evaluate_rejects_an_unknown_mode(client: Client) -> None:
    with pytest.raises(ValueError, match="mode 'eval'"):
        client.evaluate(dropout_model(), {"x": X}, mode="eval")


def test_training_steps_drop_and_infer_does_not(client: Client) -> None:
    model = client.create_model(dropout_model(), optimizer="sgd", lr=0.01, seed=3).id
    first = client.compute_gradients(model, {"x": X})
    again = client.compute_gradients(model, {"x": X})
    np.testing.assert_array_equal(first.gradients["w"], again.gradients["w"])
    dropped = (first.gradients["w"] == 0).sum()
    assert 0 < dropped < 64
    out = client.infer(model, {"x": X}, outputs=["drop"])
    np.testing.assert_array_equal(out["drop"], X)
    step = client.train_step(model, {"x": X}, return_gradients=True)
    np.testing.assert_array_equal(step.gradients["w"], first.gradients["w"])
    # The next step draws a new mask.
    second = client.train_step(model, {"x": X}, return_gradients=True)
    assert not np.array_equal(second.gradients["w"], first.gradients["w"])
