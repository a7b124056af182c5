"""Client(token=...) against a server started with --auth-tokens: every call, streams included,
carries the token; without one the server answers UNAUTHENTICATED and says how to send it."""

from __future__ import annotations

import hashlib
import os

import grpc
import pytest

from backflow import BackflowError, Client
from conftest import ServerProcess
from mlp import blobs, tanh_mlp


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("auth")
    tokens = directory / "tokens.txt"
    lines = [f"sha256:{hashlib.sha256(t.encode()).hexdigest()} {rest}\n" for t, rest in
             [("py-admin", "admin name=admin"), ("py-reader", "read name=reader")]]
    tokens.write_text("".join(lines))
    server = ServerProcess(os.environ["BACKFLOW_SERVER_BINARY"], directory / "data",
                           extra_flags=[f"--auth-tokens={tokens}"])
    yield server
    assert server.stop() == 0


def test_the_token_goes_with_unary_calls_and_streams(secured: ServerProcess) -> None:
    with Client(secured.address, token="py-admin") as admin:
        model = admin.create_model(tanh_mlp(), lr=0.1).id
        x, labels = blobs(20)
        steps = [r.step for r in admin.train(model, [{"x": x, "labels": labels}] * 3)]
        assert steps == [1, 2, 3]
        assert admin.health() == "SERVING"
    with Client(secured.address, token="py-reader") as reader:
        assert reader.infer(model, {"x": x}, outputs=["logits"])["logits"].shape == (20, 3)
        with pytest.raises(BackflowError) as denied:
            reader.train_step(model, {"x": x, "labels": labels})
        assert denied.value.code == grpc.StatusCode.PERMISSION_DENIED
        assert denied.value.message == "token 'reader' has role read; TrainStep needs train"


def test_without_a_token_the_server_says_how_to_send_one(
        secured: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BACKFLOW_TOKEN", raising=False)
    with Client(secured.address) as anonymous:
        assert anonymous.health() == "SERVING"  # probes need no token
        with pytest.raises(BackflowError) as refused:
            anonymous.list_models()
        assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED
        assert "Client(address, token=...)" in refused.value.message
    monkeypatch.setenv("BACKFLOW_TOKEN", "py-reader")
    with Client(secured.address) as from_environment:
        assert len(from_environment.list_models()) >= 1
    with Client(secured.address, token="") as explicit_none:
        with pytest.raises(BackflowError):
            explicit_none.list_models()
