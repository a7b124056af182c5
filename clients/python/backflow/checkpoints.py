"""A model's checkpoints: CheckpointInfo as Client.list_checkpoints returns them, and Checkpoint,
a whole checkpoint as Client.download_checkpoint returns it and upload_checkpoint takes it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

import numpy as np
from google.protobuf import json_format

from backflow.v1 import service_pb2
from backflow.tensors import numpy_dtype


@dataclass
class CheckpointInfo:
    """One checkpoint of a model.

    name: "" for an automatic checkpoint (the server keeps its --checkpoint-keep newest), else
    the name it was saved under; step: the model's step when it was taken; saved_unix_ms: when
    it was written; bytes: the size of its file; current: the checkpoint the model is at (its
    latest save or restore: what a plain restore and a server restart load); sequence: order of
    writing among the model's checkpoints; damage: why its file cannot be read ("" when it can),
    for a checkpoint that cannot be restored.
    """

    name: str
    step: int
    saved_unix_ms: int
    bytes: int
    current: bool
    sequence: int
    damage: str = ""

    @property
    def saved(self) -> datetime:
        """saved_unix_ms as an aware datetime in UTC."""
        return datetime.fromtimestamp(self.saved_unix_ms / 1000, tz=timezone.utc)

    @classmethod
    def from_proto(cls, info: Any) -> "CheckpointInfo":
        return cls(name=info.name, step=info.step, saved_unix_ms=info.saved_unix_ms,
                   bytes=info.bytes, current=info.current, sequence=info.sequence,
                   damage=info.damage)


_SLOT_DIRS = {0: "parameters", 1: "state", 2: "optimizer"}  # CheckpointTensor.Slot
_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


def _escape(name: str) -> str:
    """A tensor name as one file name: [A-Za-z0-9_.-] kept (a leading '.' escaped), every other
    byte as %XX, as `backflow checkpoint download` writes it."""
    out = []
    for i, byte in enumerate(name.encode("utf-8")):
        char = chr(byte)
        if char in _PLAIN and not (char == "." and i == 0):
            out.append(char)
        else:
            out.append(f"%{byte:02X}")
    return "".join(out) or "%"


def tensor_path(slot: int, name: str) -> str:
    """Where a checkpoint directory keeps a tensor: parameters/NAME.npy, state/NAME.npy or
    optimizer/KIND/NAME.npy (Note [Checkpoint directories] in clients/cli/checkpoint_transfer.cc)."""
    if slot == 2 and "/" in name:
        kind, parameter = name.split("/", 1)
        return os.path.join("optimizer", _escape(kind), _escape(parameter) + ".npy")
    return os.path.join(_SLOT_DIRS.get(slot, "optimizer"), _escape(name) + ".npy")


class Checkpoint:
    """A checkpoint held by the client: what DownloadCheckpoint sends and UploadCheckpoint takes.

    header: the CheckpointHeader message (the model's CreateModelRequest, step, optimizer_steps
    and every tensor's slot, name, dtype and shape); arrays: one NumPy array per header tensor,
    in the header's order. `parameters`, `state` and `optimizer` give them by name. `save(dir)`
    and `Checkpoint.load(dir)` use the layout `backflow checkpoint download` writes, so the CLI
    and Python read each other's directories.
    """

    def __init__(self, header: Any, arrays: list[np.ndarray]) -> None:
        if len(arrays) != len(header.tensors):
            raise ValueError(f"{len(arrays)} arrays for {len(header.tensors)} tensors")
        self.header = header
        self.arrays = arrays

    @property
    def step(self) -> int:
        return self.header.step

    def _slot(self, slot: int) -> dict[str, np.ndarray]:
        return {t.name: a for t, a in zip(self.header.tensors, self.arrays) if t.slot == slot}

    @property
    def parameters(self) -> dict[str, np.ndarray]:
        return self._slot(0)

    @property
    def state(self) -> dict[str, np.ndarray]:
        return self._slot(1)

    @property
    def optimizer(self) -> dict[str, np.ndarray]:
        """The optimizer's slots by "KIND/NAME" ("momentum/w1", "adam_m/w1", "adam_v/w1")."""
        return self._slot(2)

    @classmethod
    def from_chunks(cls, chunks: Iterable[Any]) -> "Checkpoint":
        """From a DownloadCheckpoint stream: the header, then the tensors' bytes."""
        header = None
        data = bytearray()
        for chunk in chunks:
            if header is None:
                header = chunk.header
            data += chunk.data
        if header is None:
            raise ValueError("the stream was empty")
        arrays, at = [], 0
        for tensor in header.tensors:
            dtype = numpy_dtype(tensor.dtype)
            arrays.append(np.frombuffer(bytes(data[at:at + tensor.bytes]), dtype=dtype)
                          .reshape(tuple(tensor.dims)).copy())
            at += tensor.bytes
        if at != len(data):
            raise ValueError(f"{len(data)} bytes of tensors, the header lists {at}")
        return cls(header, arrays)

    def chunks(self, chunk_bytes: int = 4 << 20) -> Iterator[Any]:
        """The UploadCheckpoint stream: the header, then the arrays' bytes in chunks."""
        yield service_pb2.CheckpointChunk(header=self.header)
        for tensor, array in zip(self.header.tensors, self.arrays):
            expected = numpy_dtype(tensor.dtype)
            if array.dtype != expected or tuple(array.shape) != tuple(tensor.dims):
                raise ValueError(f"tensor {tensor.name!r} is {array.dtype}{list(array.shape)}, "
                                 f"the header says {expected}{list(tensor.dims)}")
            raw = np.ascontiguousarray(array).tobytes()
            for at in range(0, len(raw), chunk_bytes):
                yield service_pb2.CheckpointChunk(data=raw[at:at + chunk_bytes])

    def save(self, directory: str) -> None:
        """Writes DIR/checkpoint.json and one .npy file per tensor (checkpoint.json last)."""
        for tensor, array in zip(self.header.tensors, self.arrays):
            path = os.path.join(directory, tensor_path(tensor.slot, tensor.name))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            np.save(path, array)
        with open(os.path.join(directory, "checkpoint.json"), "w", encoding="utf-8") as out:
            out.write(json_format.MessageToJson(self.header, preserving_proto_field_name=True))

    @classmethod
    def load(cls, directory: str) -> "Checkpoint":
        """A directory `save` or `backflow checkpoint download` wrote."""
        with open(os.path.join(directory, "checkpoint.json"), encoding="utf-8") as file:
            header = json_format.Parse(file.read(), service_pb2.CheckpointHeader())
        arrays = [np.load(os.path.join(directory, tensor_path(t.slot, t.name)))
                  for t in header.tensors]
        return cls(header, arrays)
