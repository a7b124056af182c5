"""Running state through the server (Note [Running state] in engine/api/trainer.h): batch norm's
running statistics move with each training step, in the same snapshot as the parameters, are
read by Infer, carried by checkpoints, settable by name and never touched by the optimizer."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from backflow import BackflowError, Client, GraphBuilder

C = 3


def bn_model():
    g = GraphBuilder("bn")
    x = g.placeholder("x", [-1, C])
    t = g.placeholder("t", [-1, C])
    mean = g.state("running_mean", [C])
    var = g.state("running_var", [C], init=1.0)
    w = g.parameter("w", [C], init=1.0)
    b = g.parameter("b", [C])
    y = g.batch_norm(x, mean, var, w, b, momentum=0.1, name="y")
    g.output(y)
    g.loss(g.squared_error(y, t, reduction="mean"))
    return g.build()


def batch(seed: int, n: int = 64) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, C)) * [1.0, 2.0, 0.5] + [3.0, -1.0, 0.0]).astype(np.float64)
    return {"x": x, "t": rng.normal(size=(n, C))}


def test_steps_move_running_statistics_as_pytorch(client: Client) -> None:
    model = client.create_model(bn_model(), optimizer="sgd", lr=0.1, dtype="float64").id
    info = client.get_model(model)
    assert sorted(s.name for s in info.state) == ["running_mean", "running_var"]
    assert sorted(p.name for p in info.parameters) == ["b", "w"]
    mean, var = np.zeros(C), np.ones(C)
    for step in range(3):
        data = batch(step)
        client.train_step(model, data)
        x = data["x"]
        mean = 0.9 * mean + 0.1 * x.mean(axis=0)
        var = 0.9 * var + 0.1 * x.var(axis=0, ddof=1)  # unbiased, as torch
        at, state = client.get_state(model)
        assert at == step + 1
        np.testing.assert_allclose(state["running_mean"], mean, rtol=1e-12)
        np.testing.assert_allclose(state["running_var"], var, rtol=1e-12)
    _, params = client.get_parameters(model)
    assert set(params) == {"w", "b"}

    # Infer normalises by the running statistics, so a sample alone gives what it gives in a
    # batch of 64.
    data = batch(9)
    whole = client.infer(model, {"x": data["x"]}, outputs=["y"])["y"]
    one = client.infer(model, {"x": data["x"][5:6]}, outputs=["y"])["y"]
    np.testing.assert_array_equal(one[0], whole[5])
    expected = (data["x"] - mean) / np.sqrt(var + 1e-5) * params["w"] + params["b"]
    np.testing.assert_allclose(whole, expected, rtol=1e-10, atol=1e-12)


def test_checkpoints_and_set_parameters_carry_state(client: Client) -> None:
    model = client.create_model(bn_model(), optimizer="sgd", lr=0.1, dtype="float64").id
    client.train_step(model, batch(1))
    client.save_checkpoint(model)
    _, saved = client.get_state(model)
    client.train_step(model, batch(2))
    _, moved = client.get_state(model)
    assert not np.array_equal(moved["running_mean"], saved["running_mean"])
    client.restore_checkpoint(model)
    _, restored = client.get_state(model)
    np.testing.assert_array_equal(restored["running_mean"], saved["running_mean"])
    np.testing.assert_array_equal(restored["running_var"], saved["running_var"])

    client.set_parameters(model, {"running_var": np.full(C, 4.0)})
    _, state = client.get_state(model)
    np.testing.assert_array_equal(state["running_var"], np.full(C, 4.0))


def test_feeding_state_is_refused(client: Client) -> None:
    model = client.create_model(bn_model(), optimizer="sgd", lr=0.1, dtype="float64").id
    data = batch(0)
    with pytest.raises(BackflowError) as error:
        client.infer(model, {"x": data["x"], "running_mean": np.zeros(C)}, outputs=["y"])
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "running state" in error.value.message
