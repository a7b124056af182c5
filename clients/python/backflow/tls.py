"""TLS for a Client: the channel credentials from PEM bytes or files, and hints for connections
that fail in the TLS handshake (docs/security.md).

Each of root_certificates, certificate_chain and private_key may be PEM bytes, or the path of a
PEM file (str or os.PathLike; a str that itself starts with "-----BEGIN" is taken as PEM text).
None falls back to $BACKFLOW_TLS_CA, $BACKFLOW_TLS_CERT and $BACKFLOW_TLS_KEY (paths);
"" or b"" means none, whatever the environment says.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Union

import grpc

#: PEM bytes, or the path of a PEM file.
PemSource = Union[bytes, str, "os.PathLike[str]"]

#: The environment variable each argument falls back to when it is None.
ENVIRONMENT = {
    "root_certificates": "BACKFLOW_TLS_CA",
    "certificate_chain": "BACKFLOW_TLS_CERT",
    "private_key": "BACKFLOW_TLS_KEY",
}

# What each argument's PEM must hold: a swapped certificate and key, or a file of the wrong kind,
# is refused here by name instead of failing in the handshake with an OpenSSL error.
_EXPECTED = {
    "root_certificates": (b"-----BEGIN CERTIFICATE-----", "certificate"),
    "certificate_chain": (b"-----BEGIN CERTIFICATE-----", "certificate"),
    "private_key": (b"PRIVATE KEY-----", "private key"),
}


@dataclass(frozen=True)
class ChannelSecurity:
    """How a Client's channel was made, for the hints in BackflowError: `tls` (a secure
    channel), `client_certificate` (it presents one), `sources` (where each given PEM came
    from, for messages: "root_certificates" or "$BACKFLOW_TLS_CA=/path")."""

    tls: bool
    client_certificate: bool = False
    sources: tuple = ()  # (argument, where its PEM came from) for each argument given

    def source(self, argument: str) -> str:
        return dict(self.sources).get(argument, argument)

    def given(self, argument: str) -> bool:
        return argument in dict(self.sources)


def _read_pem(argument: str, value: PemSource, source: str) -> bytes:
    if isinstance(value, bytes):
        data, what = value, "the PEM bytes"
    elif isinstance(value, str) and value.lstrip().startswith("-----BEGIN"):
        data, what = value.encode(), "the PEM text"
    elif isinstance(value, (str, os.PathLike)):
        try:
            with open(value, "rb") as stream:
                data = stream.read()
        except OSError as error:
            raise type(error)(error.errno, f"{source}: cannot read the PEM file ({error.strerror})",
                              os.fspath(value)) from error
        what = repr(os.fspath(value))
    else:
        raise TypeError(f"{argument} must be PEM bytes or the path of a PEM file (str or "
                        f"os.PathLike), not {type(value).__name__}")
    marker, kind = _EXPECTED[argument]
    if marker not in data:
        raise ValueError(f"{source}: no {kind} in {what} (no '{marker.decode()}' line)")
    return data


def _argument_or_environment(argument: str, value: Optional[PemSource]
                             ) -> tuple[Optional[bytes], str]:
    """The PEM bytes for `argument` (None: not given) and a description of where they came
    from."""
    if value is None:
        variable = ENVIRONMENT[argument]
        path = os.environ.get(variable)
        if not path:
            return None, argument
        source = f"${variable}={path}"
        return _read_pem(argument, path, source), source
    if isinstance(value, (bytes, str)) and not value:
        return None, argument  # "" or b"": none, whatever the environment says
    return _read_pem(argument, value, argument), argument


def channel_credentials(root_certificates: Optional[PemSource] = None,
                        certificate_chain: Optional[PemSource] = None,
                        private_key: Optional[PemSource] = None
                        ) -> tuple[Optional[grpc.ChannelCredentials], ChannelSecurity]:
    """grpc.ssl_channel_credentials for the given PEMs (or those the environment names), or None
    for a plaintext channel when there are none; and the ChannelSecurity describing the result.

    TLS is used when root_certificates is given, or a client certificate (certificate_chain and
    private_key); without root_certificates the server's certificate is checked against the
    system's roots. A certificate without its key, or a key without its certificate, is a
    ValueError."""
    roots, roots_from = _argument_or_environment("root_certificates", root_certificates)
    chain, chain_from = _argument_or_environment("certificate_chain", certificate_chain)
    key, key_from = _argument_or_environment("private_key", private_key)
    if (chain is None) != (key is None):
        given, missing = (chain_from, "private_key") if key is None else (key_from,
                                                                          "certificate_chain")
        raise ValueError(
            f"{given} is set but {missing} is not: a client certificate needs both its "
            f"certificate chain and its private key (pass {missing}=..., or set "
            f"${ENVIRONMENT[missing]})")
    sources = tuple((argument, source) for argument, source, pem in (
        ("root_certificates", roots_from, roots), ("certificate_chain", chain_from, chain),
        ("private_key", key_from, key)) if pem is not None)
    if roots is None and chain is None:
        return None, ChannelSecurity(tls=False, sources=sources)
    credentials = grpc.ssl_channel_credentials(root_certificates=roots, private_key=key,
                                               certificate_chain=chain)
    return credentials, ChannelSecurity(tls=True, client_certificate=chain is not None,
                                        sources=sources)


def connection_hint(code: grpc.StatusCode, details: str,
                    security: Optional[ChannelSecurity]) -> str:
    """What to try when a call failed to connect because of TLS ("" when the failure does not
    look like a TLS problem, or when `security` is unknown)."""
    if code != grpc.StatusCode.UNAVAILABLE or security is None:
        return ""
    text = details.lower()
    roots = (security.source("root_certificates") if security.given("root_certificates")
             else "the system's root certificates (no root_certificates given)")
    if "certificate verify failed" in text:
        return (f"the server's certificate is not trusted by {roots}: pass the CA that signed "
                "it, and check that the certificate has not expired")
    if "is not in peer certificate" in text:
        return ("the server's certificate does not name the host in the address: connect by "
                "one of the names in its subjectAltName (deploy/gen-certs.sh --hosts)")
    if "wrong version number" in text:
        return ("the server does not speak TLS (it was started without --tls-cert): connect "
                "without root_certificates, certificate_chain and private_key, and unset "
                "$BACKFLOW_TLS_CA, $BACKFLOW_TLS_CERT and $BACKFLOW_TLS_KEY")
    closed = "socket closed" in text or "connection reset" in text
    if closed and not security.tls:
        return ("the server closed the connection during its setup, as a TLS server does "
                "with a plaintext client: if the server speaks TLS (--tls-cert), pass "
                "root_certificates=... (the CA that signed its certificate) or set "
                "$BACKFLOW_TLS_CA")
    if closed and not security.client_certificate:
        return ("the server closed the connection after the TLS handshake: if it requires "
                "client certificates (--tls-client-ca), pass certificate_chain=... and "
                "private_key=... or set $BACKFLOW_TLS_CERT and $BACKFLOW_TLS_KEY")
    if closed:
        return (f"the server closed the connection after the TLS handshake: if it requires "
                f"client certificates (--tls-client-ca), it does not accept this one "
                f"({security.source('certificate_chain')}): it must be signed by the CA of the "
                f"server's --tls-client-ca and allow clientAuth")
    if "ssl" in text or "handshake" in text:
        return "the TLS handshake with the server failed"
    return ""
