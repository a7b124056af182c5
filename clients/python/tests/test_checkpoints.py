"""Checkpoint history through the client: named and automatic saves, list_checkpoints, restores
by name, by step and to the current checkpoint, delete_checkpoint, and their errors."""

from __future__ import annotations

import time
from datetime import timezone

import grpc
import numpy as np
import pytest

from backflow import BackflowError, CheckpointInfo, Client
from mlp import blobs, tanh_mlp


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _code(call) -> grpc.StatusCode:
    with pytest.raises(BackflowError) as raised:
        call()
    return raised.value.code


def _trained_model(client: Client, steps: int) -> tuple[str, dict]:
    x, labels = blobs(12)
    batch = {"x": x, "labels": labels}
    info = client.create_model(tanh_mlp(), lr=0.1, momentum=0.9, seed=21)
    for _ in range(steps):
        client.train_step(info.id, batch)
    return info.id, batch


def test_named_and_automatic_checkpoints(client: Client) -> None:
    model, batch = _trained_model(client, steps=1)
    before = _now_ms()
    named_step, named_bytes = client.save_checkpoint(model, name="best")
    _, at_best = client.get_parameters(model)
    client.train_step(model, batch)
    auto_step, auto_bytes = client.save_checkpoint(model)
    after = _now_ms()
    client.train_step(model, batch)
    assert (named_step, auto_step) == (1, 2)
    assert named_bytes > 0 and auto_bytes > 0

    best, automatic = client.list_checkpoints(model)
    assert isinstance(best, CheckpointInfo)
    assert (best.name, best.step, best.bytes, best.current) == ("best", 1, named_bytes, False)
    assert (automatic.name, automatic.step, automatic.bytes, automatic.current) == (
        "", 2, auto_bytes, True)
    assert best.sequence < automatic.sequence
    for info in (best, automatic):
        assert info.damage == ""
        assert before <= info.saved_unix_ms <= after
        assert info.saved.tzinfo == timezone.utc

    assert client.restore_checkpoint(model, name="best") == 1
    step, restored = client.get_parameters(model)
    assert step == 1
    for name, value in at_best.items():
        np.testing.assert_array_equal(restored[name], value)
    assert [c.current for c in client.list_checkpoints(model)] == [True, False]

    assert client.restore_checkpoint(model, step=2) == 2
    assert client.get_model(model).step == 2
    client.train_step(model, batch)
    assert client.restore_checkpoint(model) == 2  # the one restored last

    client.delete_checkpoint(model, "best")
    assert [(c.name, c.step, c.current) for c in client.list_checkpoints(model)] == [("", 2, True)]


def test_checkpoint_errors(client: Client) -> None:
    model, batch = _trained_model(client, steps=1)
    client.save_checkpoint(model, name="best")
    assert _code(lambda: client.restore_checkpoint(model, name="nope")) == grpc.StatusCode.NOT_FOUND
    assert _code(lambda: client.restore_checkpoint(model, step=99)) == grpc.StatusCode.NOT_FOUND
    assert _code(lambda: client.delete_checkpoint(model, "nope")) == grpc.StatusCode.NOT_FOUND
    # The model is at "best": deleting it would leave nothing for a restart to load.
    assert (_code(lambda: client.delete_checkpoint(model, "best"))
            == grpc.StatusCode.FAILED_PRECONDITION)
    assert (_code(lambda: client.save_checkpoint(model, name=".hidden"))
            == grpc.StatusCode.INVALID_ARGUMENT)

    client.train_step(model, batch)
    assert (_code(lambda: client.save_checkpoint(model, name="best"))
            == grpc.StatusCode.ALREADY_EXISTS)
    assert [c.step for c in client.list_checkpoints(model)] == [1]
    assert client.save_checkpoint(model, name="best", replace=True)[0] == 2
    assert [(c.name, c.step) for c in client.list_checkpoints(model)] == [("best", 2)]


def test_conflicting_arguments_fail_before_any_call(client: Client) -> None:
    with pytest.raises(ValueError, match="not both"):
        client.restore_checkpoint("m-missing", name="best", step=1)
    with pytest.raises(ValueError, match="replace"):
        client.save_checkpoint("m-missing", replace=True)
