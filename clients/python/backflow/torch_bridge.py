"""From a PyTorch module to a backflow model in one call, through ONNX.

    info = client.from_torch(net, torch.randn(1, 1, 28, 28), loss="softmax_cross_entropy")

PyTorch is needed only here, and imported only when from_torch runs.
"""

from __future__ import annotations

import inspect
import io
from typing import Any, Optional, Sequence

#: The ONNX opset from_torch exports with (torch 1.13's default; backflow reads 11 to 17).
OPSET = 14


def _torch() -> Any:
    try:
        import torch
    except ImportError as error:
        raise ImportError("from_torch needs PyTorch (pip install torch, or Debian's "
                          "python3-torch); without it, export with torch.onnx.export elsewhere "
                          "and pass the .onnx file to create_model_from_onnx") from error
    return torch


def _input_names(module: Any, count: int) -> list[str]:
    """The names of forward's first `count` arguments (`x` for forward(self, x)), else input0..."""
    try:
        parameters = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    names = [p.name for p in parameters
             if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][:count]
    if len(names) == count and len(set(names)) == count:
        return names
    return ["input"] if count == 1 else [f"input{i}" for i in range(count)]


def export_torch(module: Any, example_inputs: Any, input_names: Optional[Sequence[str]] = None,
                 output_names: Optional[Sequence[str]] = None) -> bytes:
    """`module` as ONNX bytes, exported the way backflow trains it best (docs/onnx.md): batch
    dimension open, BatchNorm and Dropout kept (training mode), no constant folding (parameter
    names stay those of module.state_dict()), opset OPSET. The module's mode is left as it was."""
    torch = _torch()
    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    inputs_named = list(input_names) if input_names else _input_names(module, len(inputs))
    outputs_named = list(output_names) if output_names else ["output"]
    axes = {name: {0: "N"} for name in inputs_named + outputs_named}
    buffer = io.BytesIO()
    torch.onnx.export(module, inputs, buffer, input_names=inputs_named,
                      output_names=outputs_named, dynamic_axes=axes, opset_version=OPSET,
                      training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)
    return buffer.getvalue()


class TorchMixin:
    """Client.from_torch (Client inherits it)."""

    def from_torch(self, module: Any, example_inputs: Any, loss: Optional[str] = None, *,
                   input_names: Optional[Sequence[str]] = None,
                   output_names: Optional[Sequence[str]] = None, labels: str = "labels",
                   name: str = "", **create_options: Any) -> Any:
        """Exports `module` (a torch.nn.Module) with `export_torch` and creates a model from it
        with create_model_from_onnx; returns its ModelInfo.

        example_inputs: one tensor or a tuple, one per forward argument (any batch size; the
        batch stays open). loss: "softmax_cross_entropy", "squared_error" or
        "sigmoid_cross_entropy" on the module's output, with a new input `labels`; None: an
        inference-only model. Inputs are named after forward's arguments unless `input_names`
        says otherwise; the output is "output". name: the model's name (default: the module's
        class name). Other keywords (optimizer="adam", lr=1e-3, dtype, seed, frozen, metrics,
        ...) go to create_model_from_onnx. The model's parameters carry the state_dict names.
        """
        model = export_torch(module, example_inputs, input_names, output_names)
        return self.create_model_from_onnx(  # type: ignore[attr-defined]
            model, loss=loss, labels=labels, name=name or type(module).__name__,
            **create_options)


def from_torch(module: Any, example_inputs: Any, loss: Optional[str] = None, *,
               client: Any = None, address: str = "127.0.0.1:50051", **options: Any) -> Any:
    """Client.from_torch on `client`, or on a connection to `address` opened for this call."""
    if client is not None:
        return client.from_torch(module, example_inputs, loss, **options)
    from backflow.client import Client  # here: backflow.client imports this module
    with Client(address) as connection:
        return connection.from_torch(module, example_inputs, loss, **options)
