"""Who may register a uuid: the admission rules, decided on what a batch looked up."""

from __future__ import annotations

import pytest

from opscaffold.manager.enrollment.service import (
    Admission,
    Found,
    KnownNode,
    RegisterRequest,
    UsableToken,
    admit,
)
from opscaffold.manager.errors import DomainError, NodeCredentialRefused, NodeForbidden

NEW = "11111111-1111-1111-1111-111111111111"
ENROLLED = "22222222-2222-2222-2222-222222222222"
FRESH = "33333333-3333-3333-3333-333333333333"  # enrolled; the answer carrying its token was lost
ENROLLMENT, NODE_TOKEN, SPENT = "enrollment-digest", "node-digest", "spent-digest"
FOUND = Found(
    nodes={
        ENROLLED: KnownNode(2, {}, answer_lost=False, enrollment_key_hash="key"),
        FRESH: KnownNode(3, {}, answer_lost=True, enrollment_key_hash="key"),
    },
    node_tokens={NODE_TOKEN: (2, ENROLLED)},
    enrollment_tokens={ENROLLMENT: UsableToken(7, uses_left=None)},
)


def request(
    node_uuid: str, token_hash: str | None, *, key: str | None = "key", cert: str | None = None
) -> RegisterRequest:
    return RegisterRequest({"uuid": node_uuid}, {}, token_hash, cert, key)


def refusal(decision: Admission | DomainError) -> tuple[type[DomainError], str] | None:
    if isinstance(decision, Admission):
        return None
    assert isinstance(decision, NodeCredentialRefused | NodeForbidden)
    return type(decision), decision.reason


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        (request(NEW, ENROLLMENT), None),
        (request(ENROLLED, NODE_TOKEN), None),  # its own node, with its own token
        (request(FRESH, ENROLLMENT), None),  # the daemon that enrolled it, with its key
        (request(NEW, None), (NodeCredentialRefused, "no_token")),
        (request(NEW, SPENT), (NodeCredentialRefused, "bad_enrollment")),
        (request(NEW, NODE_TOKEN), (NodeForbidden, "other_node")),
        (request(ENROLLED, ENROLLMENT), (NodeForbidden, "uuid_taken")),
        (request(FRESH, ENROLLMENT, key="another"), (NodeForbidden, "uuid_taken")),
        (request(FRESH, ENROLLMENT, key=None), (NodeForbidden, "uuid_taken")),
    ],
)
def test_token_mode_admits_the_entitled_and_refuses_the_rest(
    asked: RegisterRequest, expected: tuple[type[DomainError], str] | None
) -> None:
    [decision] = admit([asked], FOUND, mtls=False)
    assert refusal(decision) == expected


def test_what_an_admission_carries() -> None:
    new, own, again = admit(
        [request(NEW, ENROLLMENT), request(ENROLLED, NODE_TOKEN), request(FRESH, ENROLLMENT)],
        FOUND,
        mtls=False,
    )
    assert isinstance(new, Admission)
    assert isinstance(own, Admission)
    assert isinstance(again, Admission)
    assert (new.known, new.enrollment_token_id, new.issue_token) == (None, 7, True)
    assert new.values["enrollment_key_hash"] == "key"  # kept for a lost answer
    assert (own.known, own.enrollment_token_id, own.issue_token) == (
        FOUND.nodes[ENROLLED],
        None,
        False,
    )
    assert (again.known, again.issue_token) == (FOUND.nodes[FRESH], True)
    assert "enrollment_key_hash" not in again.values  # the node keeps the key it enrolled with


def test_a_token_s_last_uses_go_to_the_earliest_requests() -> None:
    found = Found({}, {}, {ENROLLMENT: UsableToken(7, uses_left=2)})
    others = ["44444444-4444-4444-4444-44444444444" + str(i) for i in range(3)]
    decisions = admit([request(u, ENROLLMENT) for u in others], found, mtls=False)
    assert [refusal(d) for d in decisions] == [
        None,
        None,
        (NodeCredentialRefused, "bad_enrollment"),
    ]


@pytest.mark.parametrize(
    ("cert", "expected"),
    [
        (NEW, None),
        (None, (NodeCredentialRefused, "no_cert")),
        (ENROLLED, (NodeForbidden, "other_node")),
    ],
)
def test_mtls_mode_admits_the_node_its_certificate_names(
    cert: str | None, expected: tuple[type[DomainError], str] | None
) -> None:
    [decision] = admit([request(NEW, None, cert=cert)], FOUND, mtls=True)
    assert refusal(decision) == expected


def test_refusals_carry_the_status_and_code_of_their_class() -> None:
    credential = NodeCredentialRefused("no node certificate", "no_cert")
    forbidden = NodeForbidden("the certificate names another node", "other_node")
    assert (credential.grpc_status.name, credential.code, credential.http_status) == (
        "UNAUTHENTICATED",
        1002,
        401,
    )
    assert (forbidden.grpc_status.name, forbidden.code, forbidden.http_status) == (
        "PERMISSION_DENIED",
        1003,
        403,
    )
