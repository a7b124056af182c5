"""A model's checkpoints as Client.list_checkpoints returns them (the CheckpointInfo message)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


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
