"""What the gRPC listener needs from its process before it can honour the TLS settings."""

from __future__ import annotations

import pytest

from opscaffold.manager import tls
from opscaffold.manager.config import TlsSettings

CERTS = {"enabled": True, "cert_file": "/c.pem", "key_file": "/k.pem"}


@pytest.mark.parametrize(
    ("settings", "wanted"),
    [
        ({}, None),
        ({"min_version": "1.3"}, "PSK-AES128-CBC-SHA"),
        ({"cipher_suites": ["ECDHE-RSA-AES128-GCM-SHA256"]}, "ECDHE-RSA-AES128-GCM-SHA256"),
    ],
)
def test_a_grpc_server_refuses_tls_settings_its_process_cannot_honour(
    monkeypatch: pytest.MonkeyPatch, settings: dict[str, object], wanted: str | None
) -> None:
    chosen = TlsSettings.model_validate({**CERTS, **settings})
    monkeypatch.delenv(tls.GRPC_CIPHERS_ENV, raising=False)
    problem = tls.grpc_problem(chosen)
    if wanted is None:
        assert problem is None
        return
    assert problem is not None
    assert "tls.min_version / tls.cipher_suites cannot be applied to gRPC" in problem
    monkeypatch.setenv(tls.GRPC_CIPHERS_ENV, wanted)
    assert tls.grpc_problem(chosen) is None


def test_the_cipher_list_cannot_be_set_once_grpc_is_loaded() -> None:
    import grpc  # noqa: F401  (loaded already in this process; said for the reader)

    with pytest.raises(RuntimeError, match="before grpc is imported"):
        tls.prepare_grpc(TlsSettings.model_validate({**CERTS, "min_version": "1.3"}))
    tls.prepare_grpc(TlsSettings())  # nothing to set: no complaint
