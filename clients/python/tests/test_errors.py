"""Failed calls raise BackflowError with the server's code and a message naming the culprit."""

from __future__ import annotations

from typing import Iterator

import grpc
import numpy as np
import pytest

from backflow import BackflowError, Client
from mlp import HIDDEN, blobs, tanh_mlp

STREAM_TIMEOUT_S = 60.0


def check(error: BackflowError, code: grpc.StatusCode, *needles: str) -> None:
    assert error.code == code, str(error)
    for needle in needles:
        assert needle in error.message, error.message


def test_error_wraps_the_rpc_error(client: Client) -> None:
    with pytest.raises(BackflowError) as raised:
        client.get_model("no-such-model")
    error = raised.value
    assert isinstance(error, Exception)
    assert isinstance(error.__cause__, grpc.RpcError)
    check(error, grpc.StatusCode.NOT_FOUND, "no-such-model")
    assert str(error).startswith("NOT_FOUND: ")


@pytest.mark.parametrize("call", ["get_model", "delete_model", "save_checkpoint",
                                  "restore_checkpoint", "list_checkpoints", "get_parameters"])
def test_unknown_model_is_not_found(client: Client, call: str) -> None:
    with pytest.raises(BackflowError) as raised:
        getattr(client, call)("m-missing")
    check(raised.value, grpc.StatusCode.NOT_FOUND, "m-missing")


def test_unknown_model_in_a_step_is_not_found(client: Client) -> None:
    x, labels = blobs(4)
    with pytest.raises(BackflowError) as raised:
        client.train_step("m-missing", {"x": x, "labels": labels})
    check(raised.value, grpc.StatusCode.NOT_FOUND, "m-missing")


def test_bad_graph_names_the_node(client: Client) -> None:
    graph = tanh_mlp()
    hidden = next(n for n in graph.nodes if n.name == "h_pre")
    hidden.inputs[0] = "x2"  # not defined anywhere
    with pytest.raises(BackflowError) as raised:
        client.create_model(graph)
    check(raised.value, grpc.StatusCode.INVALID_ARGUMENT, "node 'h_pre'", "x2")
    with pytest.raises(BackflowError) as raised:
        client.evaluate(graph, {"x": np.zeros((1, 2)), "labels": np.zeros(1)})
    check(raised.value, grpc.StatusCode.INVALID_ARGUMENT, "node 'h_pre'")


def test_bad_optimizer_setting_names_the_field(client: Client) -> None:
    with pytest.raises(BackflowError) as raised:
        client.create_model(tanh_mlp(), momentum=1.0)
    check(raised.value, grpc.StatusCode.INVALID_ARGUMENT, "momentum")
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        client.create_model(tanh_mlp(), optimizer="rmsprop")


def test_bad_batches_name_the_tensor_and_change_nothing(client: Client) -> None:
    x, labels = blobs(8)
    info = client.create_model(tanh_mlp(), seed=21)
    _, before = client.get_parameters(info.id)
    bad_batches = {
        "wrong shape": {"x": x[:, :1], "labels": labels},
        "missing placeholder": {"x": x},
        "NaN": {"x": np.where(np.arange(16).reshape(8, 2) == 5, np.nan, x), "labels": labels},
    }
    for what, batch in bad_batches.items():
        with pytest.raises(BackflowError) as raised:
            client.train_step(info.id, batch)
        needle = "labels" if what == "missing placeholder" else "'x'"
        check(raised.value, grpc.StatusCode.INVALID_ARGUMENT, needle)
    step, after = client.get_parameters(info.id)
    assert step == 0
    for name in before:
        np.testing.assert_array_equal(after[name], before[name])


def test_unknown_names(client: Client) -> None:
    x, _ = blobs(2)
    info = client.create_model(tanh_mlp())
    with pytest.raises(BackflowError) as raised:
        client.get_parameters(info.id, ["w9"])
    check(raised.value, grpc.StatusCode.NOT_FOUND, "w9")
    with pytest.raises(BackflowError) as raised:
        client.infer(info.id, {"x": x}, outputs=["nope"])
    check(raised.value, grpc.StatusCode.INVALID_ARGUMENT, "nope")
    with pytest.raises(BackflowError) as raised:
        client.set_parameters(info.id, {"b1": np.zeros(HIDDEN + 1)})
    check(raised.value, grpc.StatusCode.INVALID_ARGUMENT, "b1")


def test_stream_stops_at_the_first_failing_request(client: Client) -> None:
    x, labels = blobs(8)
    info = client.create_model(tanh_mlp(), seed=22)
    batches = [{"x": x, "labels": labels}, {"x": x, "labels": labels},
               {"x": x[:, :1], "labels": labels}, {"x": x, "labels": labels}]
    steps = []
    with pytest.raises(BackflowError) as raised:
        for result in client.train(info.id, batches, timeout=STREAM_TIMEOUT_S):
            steps.append(result.step)
    check(raised.value, grpc.StatusCode.INVALID_ARGUMENT, "request 2: ", "'x'")
    assert steps == [1, 2]
    assert client.get_model(info.id).step == 2


def test_exception_from_the_batches_is_raised_as_it_is(client: Client) -> None:
    x, labels = blobs(8)
    info = client.create_model(tanh_mlp(), seed=23)

    def batches() -> Iterator[dict]:
        yield {"x": x, "labels": labels}
        raise KeyError("out of data")

    with pytest.raises(KeyError, match="out of data"):
        list(client.train(info.id, batches(), timeout=STREAM_TIMEOUT_S))
    with pytest.raises(TypeError, match="tensor 'x'"):
        list(client.train(info.id, [{"x": np.array([["a", "b"]]), "labels": labels[:1]}],
                          timeout=STREAM_TIMEOUT_S))
    assert client.health() == "SERVING"
