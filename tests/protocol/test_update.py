from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from opscaffold.protocol.update import UpdateOrder, UpdateState

MANIFEST = {
    "component": "agent",
    "version": "1.2.0",
    "os": "linux",
    "arch": "amd64",
    "size": 10,
    "sha256": "0" * 64,
    "created_at": "2026-01-01T00:00:00Z",
}


def order(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "record_id": 1,
        "manifest": MANIFEST,
        "signature": base64.b64encode(b"sig").decode(),
        "download_url": "https://manager.example/api/v1/versions/1/download",
    }
    return {**body, **changes}


def test_an_order_reads_its_signature() -> None:
    parsed = UpdateOrder.model_validate(order())
    assert parsed.signature_bytes() == b"sig"
    assert parsed.rollback is False


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"signature": "not base64!"}, "signature"),
        ({"download_url": "file:///etc/passwd"}, "download_url"),
        ({"record_id": 0}, "record_id"),
        ({"manifest": {**MANIFEST, "version": "1.2"}}, "version"),
        ({"extra": 1}, "extra"),
    ],
)
def test_a_bad_order_names_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        UpdateOrder.model_validate(order(**changes))


def test_final_states() -> None:
    assert UpdateState(record_id=1, status="rollback").final
    assert not UpdateState(record_id=1, status="downloading", progress=40).final
