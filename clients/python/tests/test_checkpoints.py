"""Checkpoint history through the client: named and automatic saves, list_checkpoints, restores
by name, by step and to the current checkpoint, delete_checkpoint, and their errors."""

from __future__ import annotations

import time
from datetime import timezone

import grpc
import numpy as np
import pytest

from backflow import BackflowError, Checkpoint, CheckpointInfo, Client
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


def test_download_and_upload_move_a_model(client: Client, tmp_path) -> None:
    model, batch = _trained_model(client, steps=2)
    client.save_checkpoint(model)
    checkpoint = client.download_checkpoint(model)
    assert checkpoint.step == 2
    assert checkpoint.header.model_id == model
    _, parameters = client.get_parameters(model)
    assert checkpoint.parameters.keys() == parameters.keys()
    for name, value in parameters.items():
        np.testing.assert_array_equal(checkpoint.parameters[name], value)
    assert sorted(checkpoint.optimizer) == sorted(f"momentum/{n}" for n in parameters)

    # Through a directory in the CLI's layout, then back to the server as a new model.
    checkpoint.save(str(tmp_path / "ckpt"))
    assert (tmp_path / "ckpt" / "checkpoint.json").exists()
    loaded = Checkpoint.load(str(tmp_path / "ckpt"))
    info = client.upload_checkpoint(tmp_path / "ckpt", name="copy")
    assert info.id != model and info.name == "copy" and info.step == 2
    np.testing.assert_array_equal(loaded.arrays[0], checkpoint.arrays[0])
    # The momentum came along: one more step agrees exactly.
    ours = client.train_step(model, batch)
    theirs = client.train_step(info.id, batch)
    assert ours.loss == theirs.loss
    _, after = client.get_parameters(info.id)
    for name, value in client.get_parameters(model)[1].items():
        np.testing.assert_array_equal(after[name], value)


def test_upload_errors_name_the_tensor(client: Client) -> None:
    model, _ = _trained_model(client, steps=1)
    client.save_checkpoint(model)
    checkpoint = client.download_checkpoint(model)
    header = checkpoint.header
    header.tensors[0].name = "nope"
    with pytest.raises(BackflowError) as raised:
        client.upload_checkpoint(checkpoint)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "tensor 'nope' (parameter)" in str(raised.value)
    with pytest.raises(ValueError):
        client.download_checkpoint(model, name="a", step=1)
    assert _code(lambda: client.download_checkpoint("m-nope")) == grpc.StatusCode.NOT_FOUND
