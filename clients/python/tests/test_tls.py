"""Client(root_certificates=, certificate_chain=, private_key=) against backflow-server started
with --tls-cert/--tls-key, and with --tls-client-ca (mutual TLS). The certificates come from
deploy/gen-certs.sh, run twice: the CA the servers use, and another CA nobody trusts.

Connections that fail in the TLS handshake are UNAVAILABLE, and BackflowError's message says what
to change (a plaintext client meeting a TLS server, an untrusted server certificate, a missing or
untrusted client certificate, a TLS client meeting a plaintext server).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import grpc
import numpy as np
import pytest

from backflow import BackflowError, Client
from conftest import ServerProcess
from mlp import blobs, tanh_mlp

# A call that fails to connect fails at once; this only bounds a server that hangs.
TIMEOUT_S = 10.0
ADMIN_TOKEN = "py-tls-admin"
TLS_ENVIRONMENT = ("BACKFLOW_TLS_CA", "BACKFLOW_TLS_CERT", "BACKFLOW_TLS_KEY", "BACKFLOW_TOKEN")


def gen_certs(source_dir: Path, directory: Path, *options: str) -> SimpleNamespace:
    """Runs deploy/gen-certs.sh into `directory`; returns the paths of what it made."""
    result = subprocess.run(["bash", str(source_dir / "deploy/gen-certs.sh"), str(directory),
                             *options], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    files = {name.replace(".", "_"): directory / name for name in
             ("ca.pem", "ca.key", "server.pem", "server.key", "client.pem", "client.key")}
    for path in files.values():
        assert path.is_file(), f"gen-certs.sh did not make {path}:\n{result.stdout}"
    return SimpleNamespace(**files)


@pytest.fixture(scope="module")
def certs(source_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    return gen_certs(source_dir, tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def other_certs(source_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A second, unrelated CA with its own server and client certificates."""
    return gen_certs(source_dir, tmp_path_factory.mktemp("other-certs"))


@pytest.fixture(scope="module")
def localhost_server(source_dir: Path,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """A TLS server whose certificate names only localhost, and that certificate's files."""
    certs = gen_certs(source_dir, tmp_path_factory.mktemp("localhost-certs"),
                      "--hosts", "localhost")
    server = ServerProcess(os.environ["BACKFLOW_SERVER_BINARY"],
                           tmp_path_factory.mktemp("localhost-data"),
                           extra_flags=[f"--tls-cert={certs.server_pem}",
                                        f"--tls-key={certs.server_key}"])
    yield server, certs
    assert server.stop() == 0, "".join(server.log)


@pytest.fixture(scope="module")
def tls_server(certs: SimpleNamespace,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(os.environ["BACKFLOW_SERVER_BINARY"],
                           tmp_path_factory.mktemp("tls-data"),
                           extra_flags=[f"--tls-cert={certs.server_pem}",
                                        f"--tls-key={certs.server_key}"])
    yield server
    assert server.stop() == 0, "".join(server.log)


@pytest.fixture(scope="module")
def mtls_server(certs: SimpleNamespace,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Mutual TLS and tokens together: a caller needs a client certificate signed by the CA, and
    a token for everything but health."""
    directory = tmp_path_factory.mktemp("mtls")
    tokens = directory / "tokens.txt"
    tokens.write_text(f"sha256:{hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()} admin "
                      "name=admin\n")
    server = ServerProcess(os.environ["BACKFLOW_SERVER_BINARY"], directory / "data",
                           extra_flags=[f"--tls-cert={certs.server_pem}",
                                        f"--tls-key={certs.server_key}",
                                        f"--tls-client-ca={certs.ca_pem}",
                                        f"--auth-tokens={tokens}"])
    yield server
    assert server.stop() == 0, "".join(server.log)


@pytest.fixture(autouse=True)
def no_tls_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in TLS_ENVIRONMENT:
        monkeypatch.delenv(variable, raising=False)


def refused(client: Client) -> BackflowError:
    """The error of a health check that must fail to connect."""
    with client, pytest.raises(BackflowError) as failure:
        client.health()
    assert failure.value.code == grpc.StatusCode.UNAVAILABLE, failure.value
    return failure.value


def check_serves(client: Client) -> None:
    """Health, then a model made, trained on a stream and asked for logits over the channel;
    the logits must be the ones the model's own parameters give."""
    assert client.health() == "SERVING"
    assert client.health("backflow.v1.Backflow") == "SERVING"
    model = client.create_model(tanh_mlp(), lr=0.1).id
    x, labels = blobs(20)
    assert [r.step for r in client.train(model, [{"x": x, "labels": labels}] * 2)] == [1, 2]
    logits = client.infer(model, {"x": x}, outputs=["logits"])["logits"]
    step, p = client.get_parameters(model)
    assert step == 2
    expected = np.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]
    assert logits.shape == (20, 3)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)
    client.delete_model(model)


# ---- server authentication (--tls-cert, --tls-key) ----

def test_a_plaintext_client_is_refused_and_told_to_use_tls(tls_server: ServerProcess) -> None:
    error = refused(Client(tls_server.address, timeout=TIMEOUT_S))
    assert "the server speaks TLS (--tls-cert), pass root_certificates=" in error.message, error


def test_a_client_trusting_the_ca_by_path_is_served(tls_server: ServerProcess,
                                                    certs: SimpleNamespace) -> None:
    with Client(tls_server.address, timeout=TIMEOUT_S,
                root_certificates=str(certs.ca_pem)) as client:
        check_serves(client)


def test_pem_bytes_and_path_objects_work_alike(tls_server: ServerProcess,
                                               certs: SimpleNamespace) -> None:
    with Client(tls_server.address, timeout=TIMEOUT_S,
                root_certificates=certs.ca_pem.read_bytes()) as client:
        check_serves(client)
    with Client(tls_server.address, timeout=TIMEOUT_S, root_certificates=certs.ca_pem) as client:
        assert client.health() == "SERVING"


def test_the_host_name_form_of_the_address_is_in_the_certificate(
        tls_server: ServerProcess, certs: SimpleNamespace) -> None:
    port = tls_server.address.rsplit(":", 1)[1]
    with Client(f"localhost:{port}", timeout=TIMEOUT_S,
                root_certificates=certs.ca_pem) as client:
        assert client.health() == "SERVING"


def test_the_ca_can_come_from_the_environment(tls_server: ServerProcess, certs: SimpleNamespace,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKFLOW_TLS_CA", str(certs.ca_pem))
    with Client(tls_server.address, timeout=TIMEOUT_S) as client:
        check_serves(client)
    # "" turns TLS off whatever the environment says: the TLS server then refuses the client.
    error = refused(Client(tls_server.address, timeout=TIMEOUT_S, root_certificates=""))
    assert "pass root_certificates=" in error.message


def test_a_server_signed_by_another_ca_is_not_trusted(tls_server: ServerProcess,
                                                      other_certs: SimpleNamespace) -> None:
    error = refused(Client(tls_server.address, timeout=TIMEOUT_S,
                           root_certificates=other_certs.ca_pem))
    assert "certificate verify failed" in error.message
    assert "the server's certificate is not trusted by root_certificates" in error.message


def test_an_untrusted_ca_from_the_environment_is_named_in_the_hint(
        tls_server: ServerProcess, other_certs: SimpleNamespace,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKFLOW_TLS_CA", str(other_certs.ca_pem))
    error = refused(Client(tls_server.address, timeout=TIMEOUT_S))
    assert f"not trusted by $BACKFLOW_TLS_CA={other_certs.ca_pem}" in error.message


def test_the_address_must_be_a_name_in_the_certificate(localhost_server: tuple) -> None:
    server, certs = localhost_server
    error = refused(Client(server.address, timeout=TIMEOUT_S, root_certificates=certs.ca_pem))
    assert "Peer name 127.0.0.1 is not in peer certificate" in error.message, error
    assert "connect by one of the names in its subjectAltName" in error.message
    port = server.address.rsplit(":", 1)[1]
    with Client(f"localhost:{port}", timeout=TIMEOUT_S, root_certificates=certs.ca_pem) as client:
        assert client.health() == "SERVING"


def test_a_tls_client_against_a_plaintext_server_is_told_so(server: ServerProcess,
                                                            certs: SimpleNamespace) -> None:
    error = refused(Client(server.address, timeout=TIMEOUT_S, root_certificates=certs.ca_pem))
    assert "the server does not speak TLS" in error.message, error


# ---- mutual TLS (--tls-client-ca) ----

def test_mutual_tls_refuses_a_client_without_a_certificate(mtls_server: ServerProcess,
                                                           certs: SimpleNamespace) -> None:
    error = refused(Client(mtls_server.address, timeout=TIMEOUT_S,
                           root_certificates=certs.ca_pem, token=ADMIN_TOKEN))
    assert "pass certificate_chain=... and private_key=..." in error.message, error


def test_mutual_tls_refuses_a_certificate_of_another_ca(mtls_server: ServerProcess,
                                                        certs: SimpleNamespace,
                                                        other_certs: SimpleNamespace) -> None:
    error = refused(Client(mtls_server.address, timeout=TIMEOUT_S,
                           root_certificates=certs.ca_pem, token=ADMIN_TOKEN,
                           certificate_chain=other_certs.client_pem,
                           private_key=other_certs.client_key))
    assert "it does not accept this one (certificate_chain)" in error.message, error


def test_mutual_tls_serves_a_client_with_the_right_certificate(mtls_server: ServerProcess,
                                                               certs: SimpleNamespace) -> None:
    with Client(mtls_server.address, timeout=TIMEOUT_S, token=ADMIN_TOKEN,
                root_certificates=certs.ca_pem.read_bytes(),
                certificate_chain=certs.client_pem.read_bytes(),
                private_key=certs.client_key.read_bytes()) as client:
        check_serves(client)


def test_mutual_tls_still_checks_tokens(mtls_server: ServerProcess,
                                        certs: SimpleNamespace) -> None:
    with Client(mtls_server.address, timeout=TIMEOUT_S, root_certificates=certs.ca_pem,
                certificate_chain=certs.client_pem, private_key=certs.client_key) as client:
        assert client.health() == "SERVING"  # health needs no token
        with pytest.raises(BackflowError) as unauthenticated:
            client.list_models()
        assert unauthenticated.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_mutual_tls_from_the_environment(mtls_server: ServerProcess, certs: SimpleNamespace,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKFLOW_TLS_CA", str(certs.ca_pem))
    monkeypatch.setenv("BACKFLOW_TLS_CERT", str(certs.client_pem))
    monkeypatch.setenv("BACKFLOW_TLS_KEY", str(certs.client_key))
    monkeypatch.setenv("BACKFLOW_TOKEN", ADMIN_TOKEN)
    with Client(mtls_server.address, timeout=TIMEOUT_S) as client:
        check_serves(client)


# ---- arguments refused before any connection ----

def test_a_certificate_without_its_key_is_refused(certs: SimpleNamespace) -> None:
    with pytest.raises(ValueError) as no_key:
        Client("127.0.0.1:1", root_certificates=certs.ca_pem, certificate_chain=certs.client_pem)
    assert str(no_key.value).startswith("certificate_chain is set but private_key is not")
    with pytest.raises(ValueError) as no_certificate:
        Client("127.0.0.1:1", private_key=certs.client_key.read_bytes())
    assert str(no_certificate.value).startswith(
        "private_key is set but certificate_chain is not")


def test_a_certificate_from_the_environment_without_its_key_names_the_variables(
        certs: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKFLOW_TLS_CERT", str(certs.client_pem))
    with pytest.raises(ValueError) as no_key:
        Client("127.0.0.1:1")
    assert str(no_key.value) == (
        f"$BACKFLOW_TLS_CERT={certs.client_pem} is set but private_key is not: a client "
        "certificate needs both its certificate chain and its private key (pass "
        "private_key=..., or set $BACKFLOW_TLS_KEY)")


def test_swapped_or_missing_pem_files_are_refused_by_name(certs: SimpleNamespace,
                                                          tmp_path: Path) -> None:
    with pytest.raises(ValueError) as swapped:
        Client("127.0.0.1:1", root_certificates=certs.ca_pem,
               certificate_chain=certs.client_key, private_key=certs.client_pem)
    assert str(swapped.value) == (
        f"certificate_chain: no certificate in '{certs.client_key}' (no "
        "'-----BEGIN CERTIFICATE-----' line)")
    with pytest.raises(ValueError) as not_pem:
        Client("127.0.0.1:1", root_certificates=b"not a certificate")
    assert str(not_pem.value) == ("root_certificates: no certificate in the PEM bytes (no "
                                  "'-----BEGIN CERTIFICATE-----' line)")
    with pytest.raises(FileNotFoundError) as missing:
        Client("127.0.0.1:1", root_certificates=tmp_path / "absent.pem")
    assert "root_certificates: cannot read the PEM file" in str(missing.value)
    with pytest.raises(TypeError):
        Client("127.0.0.1:1", root_certificates=42)  # type: ignore[arg-type]
