"""Package manifests: signed by one key, checked against the keys a daemon trusts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from opscaffold.protocol.manifest import (
    BadSignature,
    Manifest,
    fingerprint,
    generate_key,
    load_private_key,
    load_public_key,
    private_pem,
    public_pem,
    sign,
    verify,
)

SHA = "ab" * 32


def manifest(**changes: object) -> Manifest:
    values: dict[str, object] = {
        "component": "agent",
        "version": "2.0.0",
        "os": "linux",
        "arch": "amd64",
        "size": 1234,
        "sha256": SHA,
        "created_at": "2026-12-05T04:00:00Z",
    }
    return Manifest.model_validate(values | changes)


def test_a_signature_holds_for_its_manifest_and_names_its_key() -> None:
    old, new = generate_key(), generate_key()
    signature = sign(manifest(), new)
    trusted = [old.public_key(), new.public_key()]  # rotated: both trusted for a while
    assert verify(manifest(), signature, trusted) == fingerprint(new.public_key())


@pytest.mark.parametrize(
    "changes",
    [{"version": "2.0.1"}, {"component": "daemon"}, {"size": 1235}, {"sha256": "cd" * 32}],
)
def test_a_signature_does_not_cover_another_manifest(changes: dict[str, object]) -> None:
    key = generate_key()
    signature = sign(manifest(), key)
    with pytest.raises(BadSignature):
        verify(manifest(**changes), signature, [key.public_key()])


def test_an_unknown_key_is_not_trusted() -> None:
    signature = sign(manifest(), generate_key())
    with pytest.raises(BadSignature):
        verify(manifest(), signature, [generate_key().public_key()])
    with pytest.raises(BadSignature):
        verify(manifest(), signature, [])


def test_keys_survive_their_pem_form() -> None:
    key = generate_key()
    again = load_private_key(private_pem(key))
    public = load_public_key(public_pem(key.public_key()))
    assert verify(manifest(), sign(manifest(), again), [public]) == fingerprint(public)


def test_the_canonical_form_is_stable() -> None:
    assert manifest().canonical() == (
        b'{"arch":"amd64","component":"agent","created_at":"2026-12-05T04:00:00Z",'
        b'"os":"linux","sha256":"' + SHA.encode() + b'","size":1234,"version":"2.0.0"}'
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("version", "1.0; rm -rf"),
        ("os", "plan9"),
        ("arch", "x86_64"),
        ("sha256", "AB" * 32),
        ("size", -1),
        ("component", "kernel"),
    ],
)
def test_bad_fields_are_refused_by_name(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as refused:
        manifest(**{field: value})
    assert refused.value.errors()[0]["loc"] == (field,)
