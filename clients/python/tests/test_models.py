"""Model management through the client: create/get/list/delete, Infer, parameters and
checkpoints, and the health service."""

from __future__ import annotations

import re

import grpc
import numpy as np
import pytest

from backflow import BackflowError, Client
from backflow.v1 import service_pb2, tensor_pb2
from mlp import CLASSES, HIDDEN, INPUTS, blobs, forward, tanh_mlp


def test_health_reports_serving(client: Client) -> None:
    assert client.health() == "SERVING"
    assert client.health("backflow.v1.Backflow") == "SERVING"


def test_create_model_describes_the_graph(client: Client) -> None:
    info = client.create_model(tanh_mlp(), optimizer="adam", lr=0.001, seed=9, name="blobs")
    assert re.fullmatch(r"[A-Za-z0-9_-]+", info.id)
    assert (info.name, info.graph_name, info.dtype) == ("blobs", "tanh_mlp", tensor_pb2.FLOAT32)
    assert [(p.name, list(p.shape)) for p in info.parameters] == [
        ("b1", [HIDDEN]), ("b2", [CLASSES]), ("w1", [INPUTS, HIDDEN]), ("w2", [HIDDEN, CLASSES])]
    assert {i.name: list(i.shape) for i in info.inputs} == {"x": [-1, INPUTS], "labels": [-1]}
    assert {o.name: list(o.shape) for o in info.outputs} == {"logits": [-1, CLASSES],
                                                            "accuracy": []}
    assert info.loss == "loss" and list(info.metrics) == ["accuracy"]
    assert info.parameter_count == INPUTS * HIDDEN + HIDDEN + HIDDEN * CLASSES + CLASSES
    assert info.flops_per_sample > 0
    assert (info.step, info.checkpoint_step) == (0, -1)
    assert info.optimizer.kind == service_pb2.OptimizerSpec.ADAM
    assert info.optimizer.learning_rate == 0.001
    assert client.get_model(info.id) == info
    assert info.id in [m.id for m in client.list_models()]


def test_clip_epsilon_is_sent_only_when_set(client: Client) -> None:
    default = client.create_model(tanh_mlp(), clip_norm=1.0)
    assert default.optimizer.clip_norm == 1.0
    assert not default.optimizer.HasField("clip_epsilon")  # the server's default, 1e-6
    exact = client.create_model(tanh_mlp(), clip_norm=1.0, clip_epsilon=0.0)
    assert exact.optimizer.HasField("clip_epsilon") and exact.optimizer.clip_epsilon == 0.0
    with pytest.raises(BackflowError, match="clip_epsilon"):
        client.create_model(tanh_mlp(), clip_norm=1.0, clip_epsilon=-1.0)


def test_delete_model(client: Client) -> None:
    info = client.create_model(tanh_mlp())
    client.delete_model(info.id)
    assert info.id not in [m.id for m in client.list_models()]
    with pytest.raises(BackflowError) as raised:
        client.get_model(info.id)
    assert raised.value.code == grpc.StatusCode.NOT_FOUND


def test_infer_defaults_to_the_outputs_its_inputs_determine(client: Client) -> None:
    x, labels = blobs(10)
    info = client.create_model(tanh_mlp(), seed=11)
    _, params = client.get_parameters(info.id)

    predictions = client.infer(info.id, {"x": x})
    assert set(predictions) == {"logits"}  # no labels: no accuracy
    assert predictions["logits"].shape == (10, CLASSES)
    assert predictions["logits"].dtype == np.float32
    np.testing.assert_allclose(predictions["logits"], forward(params, x), rtol=1e-5, atol=1e-6)

    both = client.infer(info.id, {"x": x, "labels": labels})
    assert set(both) == {"logits", "accuracy"}
    expected_accuracy = np.mean(both["logits"].argmax(axis=1) == labels)
    assert float(both["accuracy"]) == pytest.approx(expected_accuracy, abs=1e-6)

    hidden = client.infer(info.id, {"x": x.astype(np.float64)}, outputs=["h"])  # sent as float32
    assert set(hidden) == {"h"} and hidden["h"].shape == (10, HIDDEN)


def test_parameters_round_trip(client: Client) -> None:
    info = client.create_model(tanh_mlp(), seed=12)
    rng = np.random.default_rng(12)
    values = {"w1": rng.normal(size=(INPUTS, HIDDEN)), "b2": rng.normal(size=CLASSES)}
    assert client.set_parameters(info.id, values) == 0
    step, params = client.get_parameters(info.id)
    assert step == 0
    for name, value in values.items():  # float64 arrays, stored by a float32 model
        assert params[name].dtype == np.float32
        np.testing.assert_array_equal(params[name], value.astype(np.float32))

    x, labels = blobs(6)
    client.train_step(info.id, {"x": x, "labels": labels})
    with pytest.raises(BackflowError) as raised:
        client.set_parameters(info.id, {"b1": np.ones(HIDDEN)}, if_step=0)
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert not np.any(client.get_parameters(info.id, ["b1"])[1]["b1"] == 1)
    assert client.set_parameters(info.id, {"b1": np.ones(HIDDEN)}, if_step=1) == 1
    np.testing.assert_array_equal(client.get_parameters(info.id, ["b1"])[1]["b1"],
                                  np.ones(HIDDEN, np.float32))


def test_initial_parameters_are_applied(client: Client) -> None:
    w2 = np.arange(HIDDEN * CLASSES, dtype=np.float64).reshape(HIDDEN, CLASSES) / 100
    info = client.create_model(tanh_mlp(), dtype="float64", initial_parameters={"w2": w2})
    _, params = client.get_parameters(info.id, ["w2", "b2"])
    np.testing.assert_array_equal(params["w2"], w2)
    np.testing.assert_array_equal(params["b2"], np.zeros(CLASSES))


def test_checkpoint_restore_repeats_training_bitwise(client: Client) -> None:
    x, labels = blobs(24)
    batch = {"x": x, "labels": labels}
    info = client.create_model(tanh_mlp(), lr=0.1, momentum=0.9, seed=13, dtype="float64")
    with pytest.raises(BackflowError) as raised:
        client.restore_checkpoint(info.id)
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION

    for _ in range(3):
        client.train_step(info.id, batch)
    step, size = client.save_checkpoint(info.id)
    assert step == 3 and size > 0
    assert client.get_model(info.id).checkpoint_step == 3
    _, saved = client.get_parameters(info.id)
    first = [client.train_step(info.id, batch).loss for _ in range(2)]

    assert client.restore_checkpoint(info.id) == 3
    step, restored = client.get_parameters(info.id)
    assert step == 3
    for name in saved:
        np.testing.assert_array_equal(restored[name], saved[name])
    # Momentum is part of the checkpoint, so the same steps give the same losses.
    assert [client.train_step(info.id, batch).loss for _ in range(2)] == first


def test_get_model_with_history_returns_the_steps_losses(client: Client) -> None:
    info = client.create_model(tanh_mlp(), lr=0.1, seed=4)
    x, labels = blobs(24, seed=3)
    results = [client.train_step(info.id, {"x": x, "labels": labels}) for _ in range(5)]
    model = client.get_model(info.id, history=True)
    statistics = model.statistics
    assert statistics.samples == 5 * 24
    assert statistics.has_loss and statistics.last_loss == results[-1].loss
    assert statistics.steps_per_second > 0
    points = statistics.history.points
    assert [(p.step, p.loss) for p in points] == [(r.step, r.loss) for r in results]
    assert [list(p.metrics) for p in points] == [[r.metrics["accuracy"]] for r in results]
    assert len(client.get_model(info.id).statistics.history.points) == 0


def test_profile_names_every_node_with_its_phase(client: Client) -> None:
    info = client.create_model(tanh_mlp(), lr=0.1, seed=4)
    x, labels = blobs(16, seed=5)
    phases = service_pb2.NodeProfile.Phase
    profile = client.profile(info.id, {"x": x, "labels": labels})
    forward = {n.name for n in profile.nodes if n.phase == phases.Value("PHASE_FORWARD")}
    assert forward == {"h_pre", "h", "logits", "loss", "accuracy"}
    assert any(n.phase == phases.Value("PHASE_BACKWARD") for n in profile.nodes)
    assert 0 < profile.busy_ns <= profile.wall_ns
    assert client.get_model(info.id).step == 0

    trained = client.profile(info.id, {"x": x, "labels": labels}, mode="train")
    assert trained.nodes[-1].name == "optimizer"
    assert trained.nodes[-1].phase == phases.Value("PHASE_OPTIMIZER")
    assert client.get_model(info.id).step == 1

    inferred = client.profile(info.id, {"x": x}, mode="infer")
    assert {n.name for n in inferred.nodes} == {"h_pre", "h", "logits"}
    with pytest.raises(ValueError, match="mode must be"):
        client.profile(info.id, {"x": x}, mode="fast")
