"""The messages that describe a model to CreateModel: optimizer settings, graphs and ONNX
models (proto/backflow/v1/service.proto: OptimizerSpec, Graph, OnnxModel)."""

from __future__ import annotations

import os
from typing import Optional, Sequence, Union

from backflow.graph import GraphBuilder, load_graph
from backflow.v1 import graph_pb2, service_pb2

OptimizerSpec = service_pb2.OptimizerSpec
#: A graph message, a GraphBuilder, or the path of a .pbtxt file.
GraphLike = Union[graph_pb2.Graph, GraphBuilder, str, os.PathLike]
#: A serialized onnx.ModelProto, or the path of a .onnx file.
OnnxLike = Union[bytes, str, os.PathLike]
#: The losses CreateModel attaches to an ONNX model's output.
ONNX_LOSSES = ("softmax_cross_entropy", "squared_error", "sigmoid_cross_entropy")

_OPTIMIZERS = {"sgd": OptimizerSpec.SGD, "adam": OptimizerSpec.ADAM,
               "adamw": OptimizerSpec.ADAMW}


def optimizer_spec(optimizer: str = "sgd", lr: Optional[float] = 0.01, momentum: float = 0.0,
                   nesterov: bool = False, weight_decay: float = 0.0,
                   beta1: Optional[float] = None, beta2: Optional[float] = None,
                   epsilon: Optional[float] = None, clip_norm: float = 0.0,
                   clip_epsilon: Optional[float] = None) -> OptimizerSpec:
    """An OptimizerSpec; `optimizer` is "sgd", "adam" or "adamw". None leaves an optional
    field unset (the server's default: lr 0.01, beta1 0.9, beta2 0.999, epsilon 1e-8,
    clip_epsilon 1e-6: clipping scales by clip_norm / (norm + clip_epsilon), as PyTorch's
    clip_grad_norm_ does)."""
    kind = _OPTIMIZERS.get(optimizer.lower())
    if kind is None:
        raise ValueError(f"unknown optimizer {optimizer!r} (known: {', '.join(_OPTIMIZERS)})")
    spec = OptimizerSpec(kind=kind, momentum=momentum, nesterov=nesterov,
                         weight_decay=weight_decay, clip_norm=clip_norm)
    for name, value in (("learning_rate", lr), ("beta1", beta1), ("beta2", beta2),
                        ("epsilon", epsilon), ("clip_epsilon", clip_epsilon)):
        if value is not None:
            setattr(spec, name, value)
    return spec


def as_graph(graph: GraphLike) -> graph_pb2.Graph:
    """The Graph message for a Graph, a GraphBuilder or a .pbtxt path."""
    if isinstance(graph, graph_pb2.Graph):
        return graph
    if isinstance(graph, GraphBuilder):
        return graph.build()
    if isinstance(graph, (str, os.PathLike)):
        return load_graph(os.fspath(graph))
    raise TypeError(f"expected a Graph, GraphBuilder or .pbtxt path, got {type(graph).__name__}")


def onnx_model(model: OnnxLike, loss: Optional[str] = None, output: str = "",
               labels: str = "labels", frozen: Sequence[str] = ()) -> service_pb2.OnnxModel:
    """The OnnxModel message: `model` is the serialized ModelProto (bytes, as
    `onnx.ModelProto.SerializeToString()` or `torch.onnx.export` to a BytesIO give it) or the
    path of a .onnx file, read here.

    loss: one of ONNX_LOSSES, attached to the ONNX graph output `output` ("": its only one),
    with a new input `labels` for the class ids (int64) or targets; None: an inference-only
    model. frozen: float initializers kept as constants (the others are trained).
    """
    if isinstance(model, (str, os.PathLike)):
        with open(model, "rb") as file:
            model = file.read()
    if not isinstance(model, (bytes, bytearray)):
        raise TypeError(f"expected ONNX bytes or a .onnx path, got {type(model).__name__}")
    if isinstance(frozen, str):
        raise TypeError("frozen: expected a sequence of initializer names, got a str")
    message = service_pb2.OnnxModel(model=bytes(model), frozen=list(frozen))
    if loss is not None:
        if loss not in ONNX_LOSSES:
            raise ValueError(f"loss {loss!r} is not one of {', '.join(ONNX_LOSSES)}")
        message.loss.CopyFrom(service_pb2.OnnxLoss(kind=loss, output=output, labels=labels))
    return message
