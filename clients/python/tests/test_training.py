"""Training through the client: the Train stream, TrainStep and ComputeGradients."""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest

from backflow import BackflowError, Client, GraphBuilder
from mlp import blobs, forward, tanh_mlp

STREAM_TIMEOUT_S = 60.0


def test_train_stream_learns_and_answers_in_order(client: Client) -> None:
    x, labels = blobs()
    info = client.create_model(tanh_mlp(), optimizer="sgd", lr=0.1, momentum=0.9, seed=1)
    batch_size, steps = 32, 100
    batches = ({"x": x[k:k + batch_size], "labels": labels[k:k + batch_size]}
               for k in (batch_size * (s % 3) for s in range(steps)))
    results = list(client.train(info.id, batches, timeout=STREAM_TIMEOUT_S))

    assert [r.step for r in results] == list(range(1, steps + 1))
    losses = np.array([r.loss for r in results])
    assert np.all(np.isfinite(losses))
    # Measured with seeds 1 to 5: first ten 0.2 to 0.5, last ten below 0.001.
    assert losses[-10:].mean() < 0.5 * losses[:10].mean(), losses
    assert all(set(r.metrics) == {"accuracy"} for r in results)
    assert np.mean([r.metrics["accuracy"] for r in results[-10:]]) >= 0.95
    assert results[0].gradients == {} and results[0].parameters == {}
    assert client.get_model(info.id).step == steps


def test_train_stream_returns_gradients_and_parameters_when_asked(client: Client) -> None:
    x, labels = blobs(12)
    info = client.create_model(tanh_mlp(), lr=0.1, seed=2)
    batches = [{"x": x, "labels": labels}] * 3
    results = list(client.train(info.id, batches, return_gradients=True, return_parameters=True,
                                timeout=STREAM_TIMEOUT_S))
    step, params = client.get_parameters(info.id)
    assert step == 3
    assert set(results[-1].gradients) == set(params) == {"b1", "b2", "w1", "w2"}
    for name, value in params.items():
        np.testing.assert_array_equal(results[-1].parameters[name], value)
        assert results[-1].gradients[name].shape == value.shape


def test_train_step_applies_sgd_with_the_step_learning_rate(client: Client) -> None:
    # float64 runs the engine's reference loops, so the arithmetic can be redone here.
    x, labels = blobs(24)
    info = client.create_model(tanh_mlp(), lr=0.5, seed=3, dtype="float64")
    step0, before = client.get_parameters(info.id)
    assert step0 == 0 and before["w1"].dtype == np.float64

    probe = client.compute_gradients(info.id, {"x": x, "labels": labels})
    assert probe.step == 0 and set(probe.gradients) == set(before)
    assert client.get_model(info.id).step == 0  # no update

    result = client.train_step(info.id, {"x": x, "labels": labels}, return_gradients=True,
                               return_parameters=True, learning_rate=0.05)
    assert result.step == 1
    assert result.loss == probe.loss
    assert result.metrics == probe.metrics
    for name in before:
        np.testing.assert_allclose(result.gradients[name], probe.gradients[name], rtol=1e-12)
        np.testing.assert_allclose(result.parameters[name],
                                   before[name] - 0.05 * probe.gradients[name],
                                   rtol=1e-12, atol=1e-15)
    step1, after = client.get_parameters(info.id, names=["w2"])
    assert step1 == 1 and set(after) == {"w2"}
    np.testing.assert_array_equal(after["w2"], result.parameters["w2"])


def test_train_step_with_if_step_is_applied_at_most_once(client: Client) -> None:
    x, labels = blobs(16)
    info = client.create_model(tanh_mlp(), lr=0.1, seed=4)
    first = client.train_step(info.id, {"x": x, "labels": labels}, if_step=0)
    assert first.step == 1
    _, after_first = client.get_parameters(info.id)
    # The retry of a step whose answer was lost: refused, nothing applied.
    with pytest.raises(BackflowError) as caught:
        client.train_step(info.id, {"x": x, "labels": labels}, if_step=0)
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "parameters are at step 1, not 0" in str(caught.value)
    step, unchanged = client.get_parameters(info.id)
    assert step == 1
    for name, value in after_first.items():
        np.testing.assert_array_equal(unchanged[name], value)
    assert client.train_step(info.id, {"x": x, "labels": labels}, if_step=1).step == 2


def test_loss_matches_a_numpy_forward_pass(client: Client) -> None:
    x, labels = blobs(30)
    info = client.create_model(tanh_mlp(), seed=4, dtype="float64")
    _, params = client.get_parameters(info.id)
    logits = forward(params, x)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected = -log_softmax[np.arange(len(labels)), labels.astype(int)].mean()
    result = client.compute_gradients(info.id, {"x": x, "labels": labels})
    assert abs(result.loss - expected) <= 1e-12 * abs(expected)
    accuracy = np.mean(logits.argmax(axis=1) == labels)
    assert result.metrics["accuracy"] == accuracy


def test_leaving_a_stream_early_cancels_it(client: Client) -> None:
    x, labels = blobs(8)
    info = client.create_model(tanh_mlp(), seed=5)
    endless = ({"x": x, "labels": labels} for _ in range(100000))
    started = time.monotonic()
    for result in client.train(info.id, endless, timeout=STREAM_TIMEOUT_S):
        if result.step == 3:
            break
    assert time.monotonic() - started < 20
    # Steps the server had read ahead may still land (measured: 4 to 18 in all), then nothing.
    next_step = client.train_step(info.id, {"x": x, "labels": labels}).step
    assert 4 <= next_step <= 1000
    time.sleep(0.5)
    assert client.get_model(info.id).step == next_step


def test_embedding_trains_on_int64_ids_and_labels(client: Client) -> None:
    # Each example is two token ids; its class is the first token's id mod 3. An embedding of 6
    # tokens, flattened and mapped to 3 logits, learns it; ids and labels go as NumPy int64.
    g = GraphBuilder("tokens")
    ids = g.placeholder("ids", [-1, 2], dtype="int64")
    labels = g.placeholder("labels", [-1], dtype="int64")
    table = g.parameter("table", [6, 4], init=("normal", 0.0, 0.5))
    w = g.parameter("w", [8, 3], init="glorot")
    logits = g.matmul(g.flatten(g.embedding(table, ids, name="e")), w, name="logits")
    g.output(logits, g.accuracy(logits, labels, name="accuracy"))
    g.loss(g.softmax_cross_entropy(logits, labels, name="loss"))
    info = client.create_model(g.build(), optimizer="sgd", lr=0.5, seed=4)
    assert [(i.name, i.dtype) for i in info.inputs] == [("ids", 4), ("labels", 4)]

    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 6, size=(48, 2))
    classes = tokens[:, 0] % 3
    assert tokens.dtype == np.int64 and classes.dtype == np.int64
    results = [client.train_step(info.id, {"ids": tokens, "labels": classes}) for _ in range(60)]
    assert results[-1].loss < 0.25 * results[0].loss, [r.loss for r in results]
    outputs = client.infer(info.id, {"ids": tokens}, outputs=["logits"])
    np.testing.assert_array_equal(outputs["logits"].argmax(axis=1), classes)

    with pytest.raises(BackflowError, match="'labels': dtype float32, the placeholder is int64"):
        client.train_step(info.id, {"ids": tokens, "labels": classes.astype(np.float32)})
    bad = tokens.copy()
    bad[3, 1] = 6
    with pytest.raises(BackflowError, match="node 'e': id 6 at index 7 is not a row"):
        client.train_step(info.id, {"ids": bad, "labels": classes})
