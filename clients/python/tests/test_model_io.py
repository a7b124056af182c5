"""Models in and out: export_model and create_model_from_request recreating a trained model
bitwise, an ONNX MLP (built with onnx.helper) created with its initializers and trained, the
arguments of an ONNX model, and the errors of exports and ONNX creations."""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np
import onnx  # Debian's python3-onnx (scripts/install-deps.sh)
import pytest
from onnx import TensorProto, helper, numpy_helper

from backflow import BackflowError, Client, onnx_model
from backflow.v1 import service_pb2, tensor_pb2
from mlp import blobs, tanh_mlp


def _train(client: Client, model_id: str, steps: int) -> None:
    x, labels = blobs(48, seed=2)
    for _ in range(steps):
        client.train_step(model_id, {"x": x, "labels": labels})


def _assert_bitwise_equal(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert sorted(actual) == sorted(expected)
    for name, value in expected.items():
        assert actual[name].dtype == value.dtype and actual[name].shape == value.shape, name
        assert actual[name].tobytes() == value.tobytes(), name


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_export_model_recreates_the_trained_model_bitwise(client: Client, dtype: str) -> None:
    info = client.create_model(tanh_mlp(), optimizer="sgd", lr=0.1, momentum=0.9, seed=3,
                               dtype=dtype, name="exported")
    _train(client, info.id, 3)
    request = client.export_model(info.id)
    assert isinstance(request, service_pb2.CreateModelRequest)
    assert (request.name, request.seed, request.graph.name) == ("exported", 3, "tanh_mlp")
    assert request.optimizer.momentum == 0.9
    step, parameters = client.get_parameters(info.id)
    assert step == 3
    values = {name: np.frombuffer(t.data, np.float32 if dtype == "float32" else np.float64)
              for name, t in request.initial_parameters.items()}
    _assert_bitwise_equal(values, {k: v.ravel() for k, v in parameters.items()})

    copy = client.create_model_from_request(request)
    assert copy.id != info.id and copy.step == 0
    assert copy.dtype == (tensor_pb2.FLOAT32 if dtype == "float32" else tensor_pb2.FLOAT64)
    _assert_bitwise_equal(client.get_parameters(copy.id)[1], parameters)
    x, _ = blobs(10, seed=5)
    _assert_bitwise_equal(client.infer(copy.id, {"x": x}, ["logits"]),
                          client.infer(info.id, {"x": x}, ["logits"]))


def test_exports_of_an_unknown_model_are_not_found(client: Client) -> None:
    for export in (client.export_onnx, client.export_model):
        with pytest.raises(BackflowError, match="model 'm-none' not found") as error:
            export("m-none")
        assert error.value.code == grpc.StatusCode.NOT_FOUND


def test_onnx_model_reads_a_file_and_checks_its_arguments(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(b"\x08\x07")
    message = onnx_model(path, loss="squared_error", output="y", labels="t", frozen=["a", "b"])
    assert message.model == b"\x08\x07"
    assert (message.loss.kind, message.loss.output, message.loss.labels) == (
        "squared_error", "y", "t")
    assert list(message.frozen) == ["a", "b"]
    assert not onnx_model(b"\x08\x07").HasField("loss")  # inference only
    with pytest.raises(ValueError, match="loss 'hinge' is not one of softmax_cross_entropy, "
                                         "squared_error, sigmoid_cross_entropy"):
        onnx_model(b"", loss="hinge")
    with pytest.raises(TypeError, match="frozen"):
        onnx_model(b"", frozen="w1")
    with pytest.raises(TypeError, match="expected ONNX bytes or a .onnx path"):
        onnx_model(42)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        onnx_model(tmp_path / "missing.onnx")


def test_create_model_from_onnx_refuses_an_empty_model(client: Client) -> None:
    with pytest.raises(BackflowError, match="onnx.model: empty") as error:
        client.create_model_from_onnx(b"", loss="softmax_cross_entropy")
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(TypeError, match="optimizer options go with an optimizer name"):
        client.create_model_from_onnx(b"", optimizer=service_pb2.OptimizerSpec(), lr=0.1)


def _onnx_mlp(seed: int = 0) -> onnx.ModelProto:
    """x [N, 2] -> Gemm fc1 (16) -> Relu -> Gemm fc2 (3) = logits, as torch.onnx.export writes
    two nn.Linear around an nn.ReLU (opset 14, weights [out, in], transB=1)."""
    rng = np.random.default_rng(seed)
    weights = {"fc1.weight": rng.normal(0, 0.5, (16, 2)), "fc1.bias": rng.normal(0, 0.1, 16),
               "fc2.weight": rng.normal(0, 0.5, (3, 16)), "fc2.bias": np.zeros(3)}
    initializers = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()]
    nodes = [helper.make_node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["h_pre"], transB=1),
             helper.make_node("Relu", ["h_pre"], ["h"]),
             helper.make_node("Gemm", ["h", "fc2.weight", "fc2.bias"], ["logits"], transB=1)]
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    onnx.checker.check_model(model)
    return model


def test_onnx_mlp_is_created_with_its_initializers_and_trains(client: Client,
                                                              tmp_path: Path) -> None:
    model = _onnx_mlp()
    path = tmp_path / "mlp.onnx"
    path.write_bytes(model.SerializeToString())
    info = client.create_model_from_onnx(path, loss="softmax_cross_entropy", optimizer="sgd",
                                         lr=0.5, momentum=0.9, name="onnx-mlp")
    assert info.name == "onnx-mlp" and info.optimizer.momentum == 0.9
    assert [p.name for p in info.parameters] == ["fc1.bias", "fc1.weight", "fc2.bias",
                                                 "fc2.weight"]
    assert {i.name: i.dtype for i in info.inputs} == {"x": tensor_pb2.FLOAT32,
                                                      "labels": tensor_pb2.INT64}
    initial = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    _assert_bitwise_equal(client.get_parameters(info.id)[1], initial)

    x, labels = blobs(96, seed=1)
    losses = [client.train_step(info.id, {"x": x, "labels": labels.astype(np.int64)}).loss
              for _ in range(3)]
    assert losses[2] < losses[0], losses
    step, trained = client.get_parameters(info.id)
    assert step == 3 and any(trained[k].tobytes() != initial[k].tobytes() for k in initial)
    # float64 widens the initializers exactly.
    wide = client.create_model_from_onnx(model.SerializeToString(), dtype="float64")
    _assert_bitwise_equal(client.get_parameters(wide.id)[1],
                          {k: v.astype(np.float64) for k, v in initial.items()})


def test_onnx_round_trip_train_export_import_infers_bitwise(client: Client) -> None:
    info = client.create_model_from_onnx(_onnx_mlp(seed=4).SerializeToString(),
                                         loss="softmax_cross_entropy", optimizer="adam", lr=0.01)
    x, labels = blobs(48, seed=6)
    for _ in range(3):
        client.train_step(info.id, {"x": x, "labels": labels.astype(np.int64)})
    exported = onnx.load_from_string(client.export_onnx(info.id))
    onnx.checker.check_model(exported, full_check=True)
    assert [i.name for i in exported.graph.input] == ["x"]  # no labels
    assert [o.name for o in exported.graph.output] == ["logits"]  # no loss
    step, trained = client.get_parameters(info.id)
    assert step == 3
    initializers = {t.name: numpy_helper.to_array(t) for t in exported.graph.initializer}
    _assert_bitwise_equal({k: initializers[k] for k in trained}, trained)

    again = client.create_model_from_onnx(exported.SerializeToString())
    probe, _ = blobs(10, seed=8)
    _assert_bitwise_equal(client.infer(again.id, {"x": probe}, ["logits"]),
                          client.infer(info.id, {"x": probe}, ["logits"]))
