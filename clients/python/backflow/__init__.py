"""Python client for the backflow server (clients/python/README.md).

    from backflow import Client, GraphBuilder
    with Client("127.0.0.1:50051") as client:
        info = client.create_model(graph, optimizer="sgd", lr=0.1)
        result = client.train_step(info.id, {"x": x, "labels": y})

The generated messages live in backflow.v1 (tensor_pb2, graph_pb2, service_pb2 and the
service_pb2_grpc stubs).
"""

from backflow.checkpoints import Checkpoint, CheckpointInfo
from backflow.client import BackflowError, Client, ModelInfo, StepResult
from backflow.fit import History
from backflow.gradcheck import ElementCheck, GradientCheck, TensorCheck
from backflow.graph import GraphBuilder, load_graph, make_initializer, parse_graph
from backflow.specs import onnx_model, optimizer_spec
from backflow.tensors import to_numpy, to_tensor
from backflow.torch_bridge import export_torch, from_torch

__all__ = [
    "BackflowError",
    "Checkpoint",
    "CheckpointInfo",
    "Client",
    "ElementCheck",
    "GradientCheck",
    "GraphBuilder",
    "History",
    "ModelInfo",
    "StepResult",
    "TensorCheck",
    "export_torch",
    "from_torch",
    "load_graph",
    "make_initializer",
    "onnx_model",
    "optimizer_spec",
    "parse_graph",
    "to_numpy",
    "to_tensor",
]
