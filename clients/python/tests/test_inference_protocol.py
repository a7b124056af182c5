"""The Open Inference Protocol through the stubs the package carries (backflow.inference), as
docs/inference-protocol.md shows it: a model trained through backflow.v1 answers ModelInfer with
the same values as Infer, under its name or its id, raw or typed."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from backflow import Client
from backflow.inference import grpc_service_pb2 as pb
from backflow.inference import grpc_service_pb2_grpc as rpc
from mlp import blobs, tanh_mlp


@pytest.fixture
def stub(server) -> rpc.GRPCInferenceServiceStub:
    with grpc.insecure_channel(server.address) as channel:
        yield rpc.GRPCInferenceServiceStub(channel)


def test_model_infer_equals_infer(client: Client, stub: rpc.GRPCInferenceServiceStub) -> None:
    model = client.create_model(tanh_mlp(), lr=0.1, seed=4, name="oip-blobs")
    x, labels = blobs(32)
    for _ in range(3):
        client.train_step(model.id, {"x": x, "labels": labels})
    expected = client.infer(model.id, {"x": x[:8]}, outputs=["logits"])["logits"]

    request = pb.ModelInferRequest(model_name="oip-blobs", id="py-1",
                                   raw_input_contents=[x[:8].tobytes()])
    request.inputs.add(name="x", datatype="FP32", shape=[8, 2])
    answer = stub.ModelInfer(request, timeout=30)
    assert answer.id == "py-1"
    assert answer.parameters["step"].int64_param == 3
    assert [o.name for o in answer.outputs] == ["logits"]
    logits = np.frombuffer(answer.raw_output_contents[0], np.float32).reshape(
        answer.outputs[0].shape)
    np.testing.assert_array_equal(logits, expected)

    typed = pb.ModelInferRequest(model_name=model.id)
    typed.inputs.add(name="x", datatype="FP32", shape=[8, 2]).contents.fp32_contents.extend(
        x[:8].ravel().tolist())
    answer = stub.ModelInfer(typed, timeout=30)
    np.testing.assert_array_equal(
        np.array(answer.outputs[0].contents.fp32_contents, np.float32).reshape(8, 3), expected)

    metadata = stub.ModelMetadata(pb.ModelMetadataRequest(name="oip-blobs"), timeout=30)
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs] == [
        ("x", "FP32", [-1, 2]), ("labels", "FP32", [-1])]
    client.delete_model(model.id)


def test_model_infer_errors_name_the_input(client: Client,
                                           stub: rpc.GRPCInferenceServiceStub) -> None:
    model = client.create_model(tanh_mlp(), seed=1)
    request = pb.ModelInferRequest(model_name=model.id, raw_input_contents=[b"\0" * 12])
    request.inputs.add(name="x", datatype="FP32", shape=[2, 2])
    with pytest.raises(grpc.RpcError) as raised:
        stub.ModelInfer(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "input 'x': raw_input_contents[0] has 12 bytes" in raised.value.details()
    client.delete_model(model.id)


def test_create_model_takes_batching_settings(client: Client,
                                              stub: rpc.GRPCInferenceServiceStub) -> None:
    model = client.create_model(tanh_mlp(), seed=2, max_batch_rows=32, batch_delay_us=1500)
    config = stub.ModelConfig(pb.ModelConfigRequest(name=model.id), timeout=30).config
    assert config.dynamic_batching.max_queue_delay_microseconds == 1500
    off = client.create_model(tanh_mlp(), seed=2, max_batch_rows=1)
    config = stub.ModelConfig(pb.ModelConfigRequest(name=off.id), timeout=30).config
    assert not config.HasField("dynamic_batching")
    client.delete_model(model.id)
    client.delete_model(off.id)
