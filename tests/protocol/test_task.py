"""Task envelopes and contents as both sides read them."""

from __future__ import annotations

import time
import uuid

import pytest

from opscaffold.protocol import task as protocol

pytestmark = pytest.mark.timeout(10)


def body(**fields: object) -> protocol.EnvelopeBody:
    values: dict[str, object] = {
        "execution_id": str(uuid.uuid4()),
        "task_id": 1,
        "node_id": 2,
        "node_uuid": "node-2",
        "type": "script",
        "content": {"script": "echo hi"},
        "timeout": 10,
        "issued_at": int(time.time()),
        "not_after": int(time.time()) + 60,
    }
    return protocol.EnvelopeBody.model_validate(values | fields)


def test_a_sealed_envelope_opens_with_its_key_only() -> None:
    key, other = protocol.generate_key(), protocol.generate_key()
    envelope = protocol.seal(body(), key)

    assert protocol.open_envelope(envelope, key.public_key()).content == {"script": "echo hi"}
    assert envelope.key_id == protocol.fingerprint(key.public_key())
    with pytest.raises(protocol.EnvelopeRefused, match="signature"):
        protocol.open_envelope(envelope, other.public_key())
    changed = envelope.model_copy(update={"body": envelope.body.replace("hi", "ho")})
    with pytest.raises(protocol.EnvelopeRefused, match="signature"):
        protocol.open_envelope(changed, key.public_key())
    garbled = envelope.model_copy(update={"signature": "not base64!"})
    with pytest.raises(protocol.EnvelopeRefused):
        protocol.open_envelope(garbled, key.public_key())


def test_a_signed_body_whose_content_does_not_fit_its_type_is_refused() -> None:
    key = protocol.generate_key()
    envelope = protocol.seal(body(type="service", content={"name": "x", "action": "reload"}), key)

    with pytest.raises(protocol.EnvelopeRefused, match=r"content\.action"):
        protocol.open_envelope(envelope, key.public_key())


@pytest.mark.parametrize(
    ("task_type", "content", "field"),
    [
        ("script", {}, "content.script"),
        ("script", {"script": "x", "interpreter": "/bin/ba sh"}, "content.interpreter"),
        ("script", {"script": "x", "env": {"1BAD": {"value": "v"}}}, "content.env"),
        ("script", {"script": "x", "workdir": "tmp"}, "content.workdir"),
        ("file", {"content": "x", "dest": "/etc/x", "mode": "999"}, "content.mode"),
        ("file", {"content": "x", "dest": "/etc/x", "owner": "Root User"}, "content.owner"),
        ("service", {"name": "a b", "action": "start"}, "content.name"),
        ("custom", {"handler": "x", "params": []}, "content.params"),
        ("shell", {"script": "x"}, "type"),
    ],
)
def test_contents_that_do_not_fit_name_the_field(
    task_type: str, content: dict[str, object], field: str
) -> None:
    with pytest.raises(protocol.ContentError) as refused:
        protocol.parse_content(task_type, content)
    assert refused.value.problems[0].startswith(field)


def test_secret_values_are_masked_and_others_kept() -> None:
    content = {
        "script": "x",
        "env": {"A": {"value": "1", "secret": True}, "B": {"value": "2"}},
    }
    assert protocol.masked("script", content)["env"] == {
        "A": {"value": protocol.MASK, "secret": True},
        "B": {"value": "2"},
    }
    assert content["env"]["A"]["value"] == "1"  # type: ignore[index]  # not changed in place
