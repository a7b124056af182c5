"""Client.fit and Client.validate against the same steps taken by hand, and Client.from_torch
with a stand-in for torch (the CI machine has no PyTorch; the stand-in records how it is called
and writes a real ONNX model)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import types

import numpy as np
import onnx  # Debian's python3-onnx (scripts/install-deps.sh)
import pytest
from onnx import TensorProto, helper, numpy_helper

import backflow
from backflow import BackflowError, Client, History
from mlp import blobs, forward, tanh_mlp


def _model(client: Client, seed: int = 3) -> str:
    return client.create_model(tanh_mlp(), optimizer="sgd", lr=0.1, momentum=0.9, seed=seed).id


def _assert_bitwise_equal(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert sorted(actual) == sorted(expected)
    for name, value in expected.items():
        assert actual[name].tobytes() == value.tobytes(), name


@pytest.mark.parametrize("shuffle", [False, True])
def test_fit_takes_exactly_the_steps_a_loop_by_hand_takes(client: Client, shuffle: bool) -> None:
    x, labels = blobs(50, seed=1)
    fitted, by_hand = _model(client), _model(client)
    history = client.fit(fitted, x, labels, epochs=2, batch_size=20, shuffle=shuffle, seed=4,
                         progress=False)

    rng = np.random.default_rng(4)
    expected_losses = []
    for _ in range(2):
        order = rng.permutation(50) if shuffle else np.arange(50)
        total = 0.0
        for start in (0, 20, 40):  # 20, 20 and the last 10 rows
            rows = order[start:start + 20]
            result = client.train_step(by_hand, {"x": x[rows], "labels": labels[rows]})
            total += result.loss * len(rows)
        expected_losses.append(total / 50)

    _assert_bitwise_equal(client.get_parameters(fitted)[1], client.get_parameters(by_hand)[1])
    assert history["step"] == [3.0, 6.0]
    assert history["samples"] == [50.0, 50.0]
    assert history["loss"] == pytest.approx(expected_losses, rel=1e-12)
    assert sorted(history.history) == ["accuracy", "loss", "samples", "seconds", "step"]


def test_fit_learns_and_validation_matches_numpy(client: Client) -> None:
    model = _model(client)
    x, labels = blobs(240, seed=2)
    x_val, labels_val = blobs(90, seed=7)
    history = client.fit(model, {"x": x, "labels": labels}, epochs=4, batch_size=16,
                         validation=(x_val, labels_val), progress=False)
    assert len(history.epochs) == 4
    assert history["val_accuracy"][-1] >= 0.95
    assert history["loss"][-1] < history["loss"][0]

    # The last epoch's validation is the model as it stands now: recompute it with NumPy.
    logits = forward(client.get_parameters(model)[1], x_val)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    classes = labels_val.astype(int)
    loss = -log_softmax[np.arange(90), classes].mean()
    accuracy = (logits.argmax(axis=1) == classes).mean()
    assert history["val_loss"][-1] == pytest.approx(loss, rel=1e-5)
    assert history["val_accuracy"][-1] == pytest.approx(accuracy, abs=1e-6)
    step = client.get_model(model).step
    assert client.validate(model, {"x": x_val, "labels": labels_val}, batch_size=7) == {
        "loss": pytest.approx(loss, rel=1e-5), "accuracy": pytest.approx(accuracy, abs=1e-6)}
    assert client.get_model(model).step == step  # validation trains nothing


def test_fit_reports_one_line_an_epoch_off_a_terminal(client: Client) -> None:
    model = _model(client)
    x, labels = blobs(30)
    out = io.StringIO()
    client.fit(model, x, labels, epochs=2, batch_size=8, validation=(x, labels), out=out)
    lines = out.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert all("loss " in line and "val_accuracy " in line and "samples/s" in line
               for line in lines)
    assert lines[1].endswith("step 8)")  # 4 steps an epoch
    silent = io.StringIO()
    client.fit(model, x, labels, epochs=1, batch_size=8, progress=False, out=silent)
    assert silent.getvalue() == ""


def test_fit_says_what_is_wrong_with_its_data(client: Client) -> None:
    model = _model(client)
    x, labels = blobs(12)
    cases = [
        ((x, labels[:5]), "every array needs the same number of samples, at least 1 "
                          "\\(x: 12, labels: 5\\)"),
        (({"x": x, "labels": labels, "w": x}, None), "the model has no input w \\(its inputs: "
                                                     "x, labels\\)"),
        (({"x": x, "labels": labels}, labels), "labels given twice"),
        ((x[:0], labels[:0]), "at least 1"),
    ]
    for (features, targets), message in cases:
        with pytest.raises(ValueError, match=message):
            client.fit(model, features, targets, progress=False)
    with pytest.raises(ValueError, match="batch_size >= 1"):
        client.fit(model, x, labels, batch_size=0)
    with pytest.raises(ValueError, match="validation|samples"):
        client.fit(model, x, labels, validation=(x, labels[:3]), progress=False)
    assert client.get_model(model).step == 0  # nothing was sent
    with pytest.raises(KeyError, match="'val_loss' is not in the history"):
        History(epochs=[{"loss": 1.0}])["val_loss"]


def test_fit_refuses_an_inference_only_model_and_reports_server_errors(client: Client) -> None:
    inference_only = client.create_model_from_onnx(_onnx_linear("x", "y").SerializeToString())
    with pytest.raises(ValueError, match="has no loss: it serves inference only"):
        client.fit(inference_only.id, np.zeros((4, 2), np.float32), np.zeros(4), progress=False)
    model = _model(client)
    with pytest.raises(BackflowError, match="x"):  # wrong width: the server names the input
        client.fit(model, np.zeros((4, 5), np.float32), np.zeros(4, np.float32), progress=False)


def test_fit_casts_whole_float_labels_for_an_integer_labels_input(client: Client) -> None:
    """An ONNX import declares its labels int64; Fashion-MNIST loads them as float32. fit sends
    whole numbers as the declared type (the same steps as int64 labels) and refuses others."""
    onnx_bytes = _onnx_linear("x", "y").SerializeToString()
    as_floats = client.create_model_from_onnx(onnx_bytes, loss="softmax_cross_entropy", lr=0.1)
    as_ints = client.create_model_from_onnx(onnx_bytes, loss="softmax_cross_entropy", lr=0.1)
    int64 = backflow.v1.tensor_pb2.INT64
    assert [t.dtype for t in as_floats.inputs if t.name == "labels"] == [int64]
    x, labels = blobs(30, seed=2)
    client.fit(as_floats.id, x, labels, epochs=1, batch_size=10, shuffle=False, progress=False)
    client.fit(as_ints.id, x, labels.astype(np.int64), epochs=1, batch_size=10, shuffle=False,
               progress=False)
    _assert_bitwise_equal(client.get_parameters(as_floats.id)[1],
                          client.get_parameters(as_ints.id)[1])
    with pytest.raises(ValueError, match="'labels' takes integer class ids"):
        client.fit(as_floats.id, x, labels + 0.5, progress=False)
    assert client.get_model(as_floats.id).step == 3  # the refused call took no step


def _onnx_linear(input_name: str, output_name: str) -> onnx.ModelProto:
    """input [N, 2] -> Gemm (weight [3, 2], transB) = output [N, 3], as torch exports a Linear."""
    weight = numpy_helper.from_array(np.array([[1, 2], [3, 4], [5, 6]], np.float32), "fc.weight")
    bias = numpy_helper.from_array(np.array([0.5, -0.5, 0.25], np.float32), "fc.bias")
    graph = helper.make_graph(
        [helper.make_node("Gemm", [input_name, "fc.weight", "fc.bias"], [output_name],
                          transB=1)],
        "net", [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["N", 3])],
        [weight, bias])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


class _Net:
    """Stands for a torch.nn.Module: from_torch reads only its forward signature and type."""

    def forward(self, pixels, *unused):  # noqa: ANN001 - as a torch module's forward
        raise AssertionError("from_torch never runs forward itself")


def _fake_torch(calls: list[dict]) -> types.ModuleType:
    torch = types.ModuleType("torch")
    torch.onnx = types.SimpleNamespace(TrainingMode=types.SimpleNamespace(TRAINING="TRAINING"))

    def export(module, args, buffer, **kwargs):  # noqa: ANN001 - torch.onnx.export's shape
        calls.append({"module": module, "args": args, **kwargs})
        model = _onnx_linear(kwargs["input_names"][0], kwargs["output_names"][0])
        buffer.write(model.SerializeToString())

    torch.onnx.export = export
    return torch


def test_from_torch_exports_for_training_and_creates_the_model(
        client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []
    monkeypatch.setitem(sys.modules, "torch", _fake_torch(calls))
    net, example = _Net(), object()
    info = client.from_torch(net, example, loss="softmax_cross_entropy", optimizer="sgd",
                             lr=0.5)
    assert len(calls) == 1
    call = calls[0]
    assert call["module"] is net and call["args"] == (example,)
    assert call["input_names"] == ["pixels"] and call["output_names"] == ["output"]
    assert call["dynamic_axes"] == {"pixels": {0: "N"}, "output": {0: "N"}}
    assert (call["opset_version"], call["training"], call["do_constant_folding"]) == (
        14, "TRAINING", False)

    assert info.name == "_Net" and info.loss
    assert [t.name for t in info.inputs] == ["pixels", "labels"]
    _, parameters = client.get_parameters(info.id)
    np.testing.assert_array_equal(parameters["fc.weight"], [[1, 2], [3, 4], [5, 6]])
    pixels = np.array([[1, 0], [0, 1]], np.float32)
    history = client.fit(info.id, pixels, np.array([2, 0]), epochs=1, batch_size=2,
                         progress=False)
    assert history["step"] == [1.0]

    # The module-level form opens its own connection, or uses the one given.
    other = backflow.from_torch(net, (example,), input_names=["x"], output_names=["y"],
                                address=client.address, name="plain")
    assert (other.name, other.loss, [t.name for t in other.inputs]) == ("plain", "", ["x"])
    assert backflow.from_torch(net, example, client=client).name == "_Net"


def test_from_torch_without_torch_says_what_to_install(
        client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    with pytest.raises(ImportError, match="from_torch needs PyTorch .*create_model_from_onnx"):
        client.from_torch(_Net(), None)


def test_fit_reaches_the_accuracy_backflow_train_reaches(client: Client) -> None:
    """The same graph and data (tests/clients/data: three clusters, 480 training and 120 test
    samples) through `backflow train --data FILE.npz` and through fit: both classify the test
    set (different shuffles, so close rather than equal)."""
    data = os.path.join(os.environ["BACKFLOW_SOURCE_DIR"], "tests", "clients", "data")
    cli = os.path.join(os.path.dirname(os.environ["BACKFLOW_SERVER_BINARY"]), "backflow")
    graph, train, test = (os.path.join(data, name) for name in
                          ("blob_mlp.pbtxt", "blobs_train.npz", "blobs_test.npz"))
    run = subprocess.run([cli, "--server", client.address, "train", "--model", graph, "--data",
                          train, "--test", test, "--epochs", "3", "--batch", "16", "--lr", "0.1",
                          "--json"], capture_output=True, text=True, timeout=120, check=True)
    cli_accuracy = json.loads(run.stdout.splitlines()[-1])["test_accuracy"]

    model = client.create_model(graph, optimizer="sgd", lr=0.1)
    with np.load(train) as arrays:
        x, labels = arrays["x"], arrays["labels"]
    with np.load(test) as arrays:
        validation = (arrays["x"], arrays["labels"])
    history = client.fit(model.id, x, labels, epochs=3, batch_size=16, validation=validation,
                         progress=False)
    assert cli_accuracy >= 0.95 and history["val_accuracy"][-1] >= 0.95
    assert abs(history["val_accuracy"][-1] - cli_accuracy) <= 0.05
