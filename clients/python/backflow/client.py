"""A blocking client for the backflow.v1.Backflow gRPC service.

Calls take and return NumPy arrays; the messages of proto/backflow/v1/service.proto stay
underneath. Model descriptions are returned as backflow.v1.ModelInfo messages (fields id, name,
dtype, parameters, inputs, outputs, loss, metrics, parameter_count, flops_per_sample, step,
checkpoint_step, optimizer, ...).

Dtypes: a model computes in one dtype, and the server rejects batches of another. The client
therefore converts batches, inputs and parameter values to the model's dtype, which it learns
from CreateModel or, once per model id, from GetModel. Placeholders declared int32 or int64
(labels, ids) are the exception: integer arrays for them are sent in that dtype, and anything
else as it is, for the server to refuse by name. Evaluate converts every value to `dtype` if
given, else to float64 if any value is a float64 array, else to float32, except the values of
the graph's integer placeholders, as above.

Errors: every failed call raises BackflowError, whose `code` is the grpc.StatusCode and whose
`message` is the server's explanation (for bad graphs and tensors it names the node or tensor).
A connection that fails in the TLS handshake (UNAVAILABLE) gets a hint of what to change
appended to the message.

Thread safety: a Client may be shared by threads; gRPC channels are thread-safe.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence, TypeVar, Union

import grpc
import numpy as np

from backflow._health import health_pb2, health_pb2_grpc
from backflow.auth import BearerToken, token_or_environment
from backflow.checkpoints import Checkpoint, CheckpointInfo
from backflow.fit import FitMixin
from backflow.gradcheck import GradientCheck, check_gradients_request
from backflow.specs import (GraphLike, OnnxLike, OptimizerSpec, as_graph, onnx_model,
                            optimizer_spec)
from backflow.tensors import (INTEGER_TYPES, DTypeLike, data_type, is_float64, to_numpy_map,
                              to_tensor_map)
from backflow.tls import ChannelSecurity, PemSource, channel_credentials, connection_hint
from backflow.torch_bridge import TorchMixin
from backflow.v1 import service_pb2, service_pb2_grpc

ModelInfo = service_pb2.ModelInfo
#: Tensor name -> anything `to_tensor` accepts.
Arrays = Mapping[str, Any]

#: The largest message either side sends or accepts (the server's default limit).
MAX_MESSAGE_BYTES = 256 << 20

_Response = TypeVar("_Response")


class BackflowError(Exception):
    """A call that failed: `code` (grpc.StatusCode) and the server's `message`."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError,
                       security: Optional[ChannelSecurity] = None) -> "BackflowError":
        """The error of a failed call; with the channel's `security`, a connection that failed
        in the TLS handshake gets a hint appended (see backflow.tls.connection_hint)."""
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        details = (error.details() if hasattr(error, "details") else str(error)) or ""
        hint = connection_hint(code, details, security)
        return cls(code, f"{details} ({hint})" if hint else details)


@dataclass
class StepResult:
    """One training step (TrainStep, Train) or gradient computation (ComputeGradients).

    step: the step after this update (for ComputeGradients: the snapshot's step); loss: before
    the update; metrics: name -> value; gradients and parameters: filled when asked for
    (ComputeGradients always returns every gradient), else empty.
    """

    step: int
    loss: float
    metrics: dict[str, float]
    gradients: dict[str, np.ndarray] = field(default_factory=dict)
    parameters: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def from_proto(cls, response: Any) -> "StepResult":
        return cls(step=response.step, loss=response.loss, metrics=dict(response.metrics),
                   gradients=to_numpy_map(response.gradients),
                   parameters=to_numpy_map(getattr(response, "parameters", {})))


class Client(FitMixin, TorchMixin):
    """A connection to one backflow server.

    Args:
        address: host:port of the server.
        timeout: deadline in seconds for each unary call (None: no deadline). Train streams
            take their own `timeout`.
        token: sent as `authorization: Bearer TOKEN` with every call, for a server started
            with --auth-tokens (None: $BACKFLOW_TOKEN if set; "": none).
        root_certificates: for a server started with --tls-cert: the CA certificate(s) its
            certificate must chain to, as PEM bytes or the path of a PEM file (None:
            $BACKFLOW_TLS_CA if set; "": none). Given, the channel uses TLS.
        certificate_chain, private_key: a client certificate and its key, for a server started
            with --tls-client-ca (mutual TLS); PEM bytes or paths, both or neither (None:
            $BACKFLOW_TLS_CERT, $BACKFLOW_TLS_KEY if set; "": none). Given without
            root_certificates, the channel uses TLS and checks the server against the system's
            roots.

    Raises ValueError for a certificate without its key (or a key without its certificate) and
    for PEM that holds no certificate (or key) where one is expected, and OSError for a file that
    cannot be read, before any connection is made.
    """

    def __init__(self, address: str = "127.0.0.1:50051", timeout: Optional[float] = 60.0,
                 token: Optional[str] = None, root_certificates: Optional[PemSource] = None,
                 certificate_chain: Optional[PemSource] = None,
                 private_key: Optional[PemSource] = None) -> None:
        self.address = address
        self.timeout = timeout
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        credentials, self._security = channel_credentials(root_certificates, certificate_chain,
                                                          private_key)
        self._raw_channel = (grpc.secure_channel(address, credentials, options=options)
                             if credentials is not None else
                             grpc.insecure_channel(address, options=options))
        # token: sent as "authorization: Bearer TOKEN" on every call (None: $BACKFLOW_TOKEN).
        bearer = token_or_environment(token)
        self._channel = (grpc.intercept_channel(self._raw_channel, BearerToken(bearer))
                         if bearer else self._raw_channel)
        self._stub = service_pb2_grpc.BackflowStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._dtypes: dict[str, int] = {}  # model id -> DataType, guarded by _lock
        # model id -> {integer placeholder -> INT32 or INT64}, guarded by _lock
        self._integer_inputs: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Closes the channel; calls in flight are cancelled."""
        self._raw_channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # Server and models ---------------------------------------------------------------------

    def health(self, service: str = "") -> str:
        """The serving status from grpc.health.v1.Health/Check: "SERVING", "NOT_SERVING", ...
        `service` "" asks about the server, "backflow.v1.Backflow" about the API."""
        response = self._call(self._health.Check, health_pb2.HealthCheckRequest(service=service))
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)

    def create_model(self, graph: GraphLike, optimizer: str = "sgd", lr: Optional[float] = 0.01,
                     momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0,
                     beta1: Optional[float] = None, beta2: Optional[float] = None,
                     epsilon: Optional[float] = None, clip_norm: float = 0.0, seed: int = 0,
                     dtype: DTypeLike = "float32", name: str = "",
                     initial_parameters: Optional[Arrays] = None,
                     metrics: Optional[Sequence[str]] = None,
                     clip_epsilon: Optional[float] = None,
                     max_batch_rows: Optional[int] = None,
                     batch_delay_us: Optional[int] = None) -> ModelInfo:
        """Creates a model from `graph`; optimizer settings as in `optimizer_spec`.

        initial_parameters: values for some parameters (the rest come from their initializers,
        seeded by `seed`); metrics: scalars reported with every step (None: the graph's scalar
        outputs other than the loss); max_batch_rows, batch_delay_us: this model's dynamic
        batching of inference (None: the server's flags; max_batch_rows=1 turns it off).
        """
        wire_dtype = data_type(dtype)
        request = service_pb2.CreateModelRequest(
            graph=as_graph(graph),
            optimizer=optimizer_spec(optimizer, lr, momentum, nesterov, weight_decay, beta1,
                                     beta2, epsilon, clip_norm, clip_epsilon),
            seed=seed, dtype=wire_dtype, name=name, metrics=list(metrics or []),
            initial_parameters=to_tensor_map(initial_parameters, wire_dtype))
        if max_batch_rows is not None:
            request.batching.max_rows = max_batch_rows
        if batch_delay_us is not None:
            request.batching.delay_us = batch_delay_us
        return self._remember(self._call(self._stub.CreateModel, request))

    def create_model_from_onnx(self, model: OnnxLike, loss: Optional[str] = None,
                               output: str = "", labels: str = "labels",
                               frozen: Sequence[str] = (),
                               optimizer: Union[str, OptimizerSpec] = "sgd", seed: int = 0,
                               dtype: DTypeLike = "float32", name: str = "",
                               metrics: Optional[Sequence[str]] = None,
                               **optimizer_options: Any) -> ModelInfo:
        """Creates a model from an ONNX model: bytes or a .onnx path, with the loss attached as
        `specs.onnx_model` says (loss None: inference only). The initializers are the initial
        parameters, under their ONNX names, in `dtype`. `optimizer`: an OptimizerSpec, or a name
        with `optimizer_options` as `optimizer_spec` takes them (lr=0.1, momentum=0.9, ...)."""
        if isinstance(optimizer, str):
            optimizer = optimizer_spec(optimizer, **optimizer_options)
        elif optimizer_options:
            raise TypeError("optimizer options go with an optimizer name, not an OptimizerSpec")
        request = service_pb2.CreateModelRequest(
            onnx=onnx_model(model, loss, output, labels, frozen), optimizer=optimizer, seed=seed,
            dtype=data_type(dtype), name=name, metrics=list(metrics or []))
        return self.create_model_from_request(request)

    def create_model_from_request(self,
                                  request: service_pb2.CreateModelRequest) -> ModelInfo:
        """Sends a CreateModelRequest as it is (one from `export_model`, say)."""
        return self._remember(self._call(self._stub.CreateModel, request))

    def export_onnx(self, model_id: str) -> bytes:
        """The model as a serialized onnx.ModelProto (opset 14; its inference graph, no loss)
        whose initializers are the parameters and running state of its current snapshot, bit
        for bit. `onnx.load_from_string` reads it."""
        return self._export(model_id, service_pb2.ExportModelRequest.ONNX).onnx

    def export_model(self, model_id: str) -> service_pb2.CreateModelRequest:
        """The CreateModelRequest that recreates the model with the values of its current
        snapshot in `initial_parameters` (not the optimizer's moments); see
        `create_model_from_request`."""
        return self._export(model_id, service_pb2.ExportModelRequest.BACKFLOW).model

    def get_model(self, model_id: str, history: bool = False) -> ModelInfo:
        """The model's description, with its current step, latest checkpoint step and training
        statistics; with `history`, also its loss curve (`statistics.history.points`: step,
        loss, metrics, unix_ms; docs/observability.md#training-statistics)."""
        request = service_pb2.GetModelRequest(model_id=model_id, history=history)
        return self._remember(self._call(self._stub.GetModel, request))

    def list_models(self) -> list[ModelInfo]:
        """Every model the server holds, by id."""
        response = self._call(self._stub.ListModels, service_pb2.ListModelsRequest())
        return [self._remember(info) for info in response.models]

    def delete_model(self, model_id: str) -> None:
        """Removes the model and its files from the server."""
        self._call(self._stub.DeleteModel, service_pb2.DeleteModelRequest(model_id=model_id))
        with self._lock:
            self._dtypes.pop(model_id, None)

    # Computation ---------------------------------------------------------------------------

    def infer(self, model_id: str, inputs: Arrays,
              outputs: Optional[Sequence[str]] = None) -> dict[str, np.ndarray]:
        """Forward pass. `outputs`: any tensors of the graph (None: the graph outputs that
        `inputs` determine). Returns name -> array."""
        request = service_pb2.InferRequest(
            model_id=model_id, inputs=to_tensor_map(inputs, *self._wire_types(model_id)),
            outputs=list(outputs or []))
        return to_numpy_map(self._call(self._stub.Infer, request).outputs)

    def compute_gradients(self, model_id: str, batch: Arrays) -> StepResult:
        """Loss, metrics and the gradient of every parameter on `batch`, without an update."""
        request = service_pb2.ComputeGradientsRequest(
            model_id=model_id, batch=to_tensor_map(batch, *self._wire_types(model_id)))
        return StepResult.from_proto(self._call(self._stub.ComputeGradients, request))

    def train_step(self, model_id: str, batch: Arrays, return_gradients: bool = False,
                   return_parameters: bool = False,
                   learning_rate: Optional[float] = None,
                   if_step: Optional[int] = None) -> StepResult:
        """One optimizer step on `batch`; `learning_rate` overrides the model's for this step.

        With `if_step`, the step is applied only if the model is at that step (else
        BackflowError with FAILED_PRECONDITION, nothing applied): a call that was cancelled or
        timed out may or may not have been applied, and retrying it with the same `if_step`
        applies it at most once.
        """
        request = self._step_request(model_id, batch, self._wire_types(model_id),
                                     return_gradients, return_parameters, learning_rate)
        if if_step is not None:
            request.if_step = if_step
        return StepResult.from_proto(self._call(self._stub.TrainStep, request))

    def profile(self, model_id: str, batch: Arrays,
                mode: str = "gradients") -> service_pb2.RunProfile:
        """Where one run on `batch` goes on the server, node by node: the RunProfile message
        (docs/observability.md, "Per-node profiles"). `mode` is "gradients" (forward and
        backward, no update), "train" (also the optimizer: the step is applied) or "infer"
        (the graph's outputs that `batch` determines)."""
        wire = to_tensor_map(batch, *self._wire_types(model_id))
        if mode == "gradients":
            request = service_pb2.ComputeGradientsRequest(model_id=model_id, batch=wire,
                                                          profile=True)
            return self._call(self._stub.ComputeGradients, request).profile
        if mode == "train":
            request = service_pb2.TrainStepRequest(model_id=model_id, batch=wire, profile=True)
            return self._call(self._stub.TrainStep, request).profile
        if mode == "infer":
            request = service_pb2.InferRequest(model_id=model_id, inputs=wire, profile=True)
            return self._call(self._stub.Infer, request).profile
        raise ValueError(f"mode must be 'gradients', 'train' or 'infer', not {mode!r}")

    def train(self, model_id: str, batches: Iterable[Arrays], return_gradients: bool = False,
              return_parameters: bool = False, learning_rate: Optional[float] = None,
              timeout: Optional[float] = None) -> Iterator[StepResult]:
        """Streams `batches` through one Train call and yields one StepResult per batch, in
        order.

        gRPC reads `batches` on its own thread as fast as the server's read-ahead window and
        flow control allow, so conversion and sending overlap with training. The first failing
        step raises BackflowError (its message says "request K: ..." with K counted from 0); an
        exception raised while reading `batches` is re-raised as it is. `timeout` bounds the
        whole stream (None: no deadline). Leaving the loop early cancels the stream. A stream
        that waits on this side for the server's --stream-idle-timeout (default 60 s: no batch
        sent, no result taken) is ended by the server with DEADLINE_EXCEEDED; start a new one.
        """
        dtype = self._wire_types(model_id)
        failures: list[BaseException] = []

        def requests() -> Iterator[service_pb2.TrainStepRequest]:
            try:
                for batch in batches:
                    yield self._step_request(model_id, batch, dtype, return_gradients,
                                             return_parameters, learning_rate)
            except Exception as error:  # gRPC would report only "Exception iterating requests"
                failures.append(error)
                raise

        call = self._stub.Train(requests(), timeout=timeout)
        return self._stream_results(call, failures, self._security)

    def evaluate(self, graph: GraphLike, values: Arrays, outputs: Optional[Sequence[str]] = None,
                 target: str = "", wrt: Sequence[str] = (), seed: int = 0,
                 dtype: DTypeLike = None,
                 mode: Optional[str] = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Stateless: runs `graph` on `values` (placeholders, optionally parameters).

        Returns (outputs, gradients): outputs by name (None: the graph's outputs and loss), and
        d target / d w for each w in `wrt` (target "": the graph's loss). `mode` is "training"
        (dropout drops, batch norm uses batch statistics) or "inference"; None: training when
        `wrt` asks for gradients, else inference.
        """
        modes = {None: service_pb2.EvaluateRequest.MODE_UNSPECIFIED,
                 "training": service_pb2.EvaluateRequest.MODE_TRAINING,
                 "inference": service_pb2.EvaluateRequest.MODE_INFERENCE}
        if mode not in modes:
            raise ValueError(f"mode {mode!r} is not 'training', 'inference' or None")
        if dtype is None:
            dtype = np.float64 if any(is_float64(v) for v in values.values()) else np.float32
        graph = as_graph(graph)
        integer_inputs = {p.name: p.dtype for p in graph.placeholders if p.dtype in INTEGER_TYPES}
        request = service_pb2.EvaluateRequest(
            graph=graph, values=to_tensor_map(values, dtype, integer_inputs),
            outputs=list(outputs or []), target=target, wrt=list(wrt), seed=seed,
            dtype=data_type(dtype), mode=modes[mode])
        response = self._call(self._stub.Evaluate, request)
        return to_numpy_map(response.outputs), to_numpy_map(response.gradients)

    def check_gradients(self, graph: Optional[GraphLike] = None,
                        inputs: Optional[Arrays] = None, wrt: Optional[Sequence[str]] = None,
                        seed: int = 0, epsilon: Optional[float] = None,
                        tolerance: Optional[float] = None, abs_tolerance: Optional[float] = None,
                        max_elements_per_tensor: Optional[int] = None,
                        worst_k: Optional[int] = None, batch: Optional[int] = None,
                        model_id: Optional[str] = None) -> GradientCheck:
        """Compares the analytic gradients of `graph`'s loss (or, with `model_id`, a model's on
        its current parameters) with centred finite differences in float64 on the server.

        `inputs` gives values for placeholders (and parameters) by name; the rest are drawn with
        `seed`. `wrt` names parameters and float placeholders (None: every parameter). Unset
        settings take the server's defaults (epsilon 1e-6, tolerance 1e-6, abs_tolerance 1e-8,
        32 elements per tensor, 5 worst, batch 2). Returns a GradientCheck; `.ok` is False when
        some tensor disagrees, and str() of it is a table.
        """
        if (graph is None) == (model_id is None):
            raise ValueError("give a graph or a model_id (one of them)")
        proto = as_graph(graph) if graph is not None else None
        integer_inputs = (self._wire_types(model_id)[1] if model_id is not None else
                          {p.name: p.dtype for p in proto.placeholders if p.dtype in INTEGER_TYPES})
        request = check_gradients_request(
            proto, model_id, to_tensor_map(inputs, np.float64, integer_inputs), wrt, seed,
            epsilon=epsilon, tolerance=tolerance, abs_tolerance=abs_tolerance,
            max_elements_per_tensor=max_elements_per_tensor, worst_k=worst_k, batch=batch)
        return GradientCheck.from_proto(self._call(self._stub.CheckGradients, request))

    # Parameters and checkpoints ------------------------------------------------------------

    def get_parameters(self, model_id: str,
                       names: Optional[Sequence[str]] = None) -> tuple[int, dict[str, np.ndarray]]:
        """(step, name -> value) for `names` (None: every parameter)."""
        request = service_pb2.GetParametersRequest(model_id=model_id, names=list(names or []))
        response = self._call(self._stub.GetParameters, request)
        return response.step, to_numpy_map(response.parameters)

    def get_state(self, model_id: str) -> tuple[int, dict[str, np.ndarray]]:
        """(step, name -> value) of the model's running state (batch norm's running mean and
        variance), from the same snapshot as the parameters of that step. `set_parameters`
        writes state by name like a parameter."""
        request = service_pb2.GetParametersRequest(model_id=model_id)
        response = self._call(self._stub.GetParameters, request)
        return response.step, to_numpy_map(response.state)

    def set_parameters(self, model_id: str, values: Arrays, if_step: Optional[int] = None) -> int:
        """Replaces some or all parameters; with `if_step`, only if the model is at that step
        (else FAILED_PRECONDITION). Returns the model's step (a set does not change it)."""
        request = service_pb2.SetParametersRequest(
            model_id=model_id, parameters=to_tensor_map(values, self._model_dtype(model_id)))
        if if_step is not None:
            request.if_step = if_step
        return self._call(self._stub.SetParameters, request).step

    def save_checkpoint(self, model_id: str, name: str = "",
                        replace: bool = False) -> tuple[int, int]:
        """Checkpoints the model on the server; returns (step, size of the file in bytes).

        Without `name` the checkpoint is automatic: the server keeps the newest of those
        (--checkpoint-keep, default 3). With a `name` (1 to 64 of [A-Za-z0-9_.-], not starting
        with '.' or '-') it is kept until `delete_checkpoint`; a name already taken is ALREADY_EXISTS
        unless `replace`. Either becomes the checkpoint the model is at.
        """
        if replace and not name:
            raise ValueError("replace goes with a name (automatic checkpoints are never replaced)")
        request = service_pb2.SaveCheckpointRequest(model_id=model_id, name=name, replace=replace)
        response = self._call(self._stub.SaveCheckpoint, request)
        return response.step, response.bytes

    def restore_checkpoint(self, model_id: str, name: str = "",
                           step: Optional[int] = None) -> int:
        """Rolls the model back to a checkpoint and returns its step: the named one, or the
        newest taken at `step`, or (neither given) the one the model is at. The restored
        checkpoint becomes the one the model is at. Unknown: NOT_FOUND."""
        if name and step is not None:
            raise ValueError("give a name or a step, not both")
        request = service_pb2.RestoreCheckpointRequest(model_id=model_id, name=name)
        if step is not None:
            request.step = step
        return self._call(self._stub.RestoreCheckpoint, request).step

    def list_checkpoints(self, model_id: str) -> list[CheckpointInfo]:
        """The model's checkpoints, oldest first."""
        request = service_pb2.ListCheckpointsRequest(model_id=model_id)
        response = self._call(self._stub.ListCheckpoints, request)
        return [CheckpointInfo.from_proto(info) for info in response.checkpoints]

    def delete_checkpoint(self, model_id: str, name: str) -> None:
        """Removes the named checkpoint: NOT_FOUND if there is none, FAILED_PRECONDITION if the
        model is at it (restore another first). Automatic checkpoints are pruned by the server."""
        request = service_pb2.DeleteCheckpointRequest(model_id=model_id, name=name)
        self._call(self._stub.DeleteCheckpoint, request)

    def download_checkpoint(self, model_id: str, name: str = "",
                            step: Optional[int] = None) -> Checkpoint:
        """A stored checkpoint as NumPy arrays (DownloadCheckpoint): the one the model is at, the
        named one, or the newest taken at `step`. Save first for the state of this moment.
        `.save(directory)` writes the layout of `backflow checkpoint download`."""
        if name and step is not None:
            raise ValueError("give a name or a step, not both")
        request = service_pb2.DownloadCheckpointRequest(model_id=model_id, name=name)
        if step is not None:
            request.step = step
        try:
            return Checkpoint.from_chunks(self._stub.DownloadCheckpoint(request,
                                                                        timeout=self.timeout))
        except grpc.RpcError as error:
            raise BackflowError.from_rpc_error(error, self._security) from error

    def upload_checkpoint(self, checkpoint: Union[Checkpoint, str, os.PathLike],
                          name: Optional[str] = None) -> ModelInfo:
        """Creates a new model from a checkpoint (UploadCheckpoint): a Checkpoint, or a directory
        `Checkpoint.save` or `backflow checkpoint download` wrote. `name` renames the model."""
        if not isinstance(checkpoint, Checkpoint):
            checkpoint = Checkpoint.load(os.fspath(checkpoint))
        if name is not None:
            header = service_pb2.CheckpointHeader()
            header.CopyFrom(checkpoint.header)
            header.model.name = name
            checkpoint = Checkpoint(header, checkpoint.arrays)
        try:
            info = self._stub.UploadCheckpoint(checkpoint.chunks(), timeout=self.timeout)
        except grpc.RpcError as error:
            raise BackflowError.from_rpc_error(error, self._security) from error
        return self._remember(info)

    # Internals -----------------------------------------------------------------------------

    def _call(self, method: Callable[..., _Response], request: Any) -> _Response:
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise BackflowError.from_rpc_error(error, self._security) from error

    def _export(self, model_id: str, format: int) -> service_pb2.ExportModelResponse:
        request = service_pb2.ExportModelRequest(model_id=model_id, format=format)
        return self._call(self._stub.ExportModel, request)

    def _remember(self, info: ModelInfo) -> ModelInfo:
        with self._lock:
            self._dtypes[info.id] = data_type(info.dtype)
            self._integer_inputs[info.id] = {i.name: i.dtype for i in info.inputs
                                             if i.dtype in INTEGER_TYPES}
        return info

    def _wire_types(self, model_id: str) -> tuple[int, dict[str, int]]:
        """The model's dtype and its integer placeholders' (see `to_tensor_map`)."""
        dtype = self._model_dtype(model_id)
        with self._lock:
            return dtype, dict(self._integer_inputs.get(model_id, {}))

    def _model_dtype(self, model_id: str) -> int:
        with self._lock:
            known = self._dtypes.get(model_id)
        return known if known is not None else data_type(self.get_model(model_id).dtype)

    @staticmethod
    def _step_request(model_id: str, batch: Arrays, dtype: tuple[int, dict[str, int]],
                      return_gradients: bool,
                      return_parameters: bool,
                      learning_rate: Optional[float]) -> service_pb2.TrainStepRequest:
        request = service_pb2.TrainStepRequest(
            model_id=model_id, batch=to_tensor_map(batch, *dtype),
            return_gradients=return_gradients, return_parameters=return_parameters)
        if learning_rate is not None:
            request.learning_rate = learning_rate
        return request

    @staticmethod
    def _stream_results(call: Any, failures: list[BaseException],
                        security: ChannelSecurity) -> Iterator[StepResult]:
        try:
            for response in call:
                yield StepResult.from_proto(response)
        except grpc.RpcError as error:
            if failures:
                raise failures[0] from error
            raise BackflowError.from_rpc_error(error, security) from error
        finally:
            call.cancel()  # a no-op once the stream has ended; stops it if the caller left early
