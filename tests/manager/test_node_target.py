"""resolve_target: which nodes a rollout or task target names, on every database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.errors import GroupNotFound, InvalidArgument, NodeNotFound, NotFound
from opscaffold.manager.node.service import TargetType, resolve_target
from tests.manager import factories as f
from tests.manager.conftest import Stack


@pytest.fixture
async def fleet(stack: Stack, client: httpx.AsyncClient) -> dict[str, int]:
    """a > a1 > a11, b; nodes n1 (a), n2 (a1), n3 (a11), n4 (b), n5 (no group)."""
    a = await f.add_group(stack, "a")
    a1 = await f.add_group(stack, "a1", a)
    a11 = await f.add_group(stack, "a11", a1)
    b = await f.add_group(stack, "b")
    return {
        "a": a,
        "a1": a1,
        "a11": a11,
        "b": b,
        "n1": await f.add_node(stack, "n1", group_id=a, tags=["web"], labels={"env": "prod"}),
        "n2": await f.add_node(
            stack, "n2", group_id=a1, tags=["web", "edge"], labels={"env": "prod", "tier": "fe"}
        ),
        "n3": await f.add_node(stack, "n3", group_id=a11, tags=["db"], labels={"env": "dev"}),
        "n4": await f.add_node(stack, "n4", group_id=b, tags=["edge"], labels={"tier": "fe"}),
        "n5": await f.add_node(stack, "n5"),
    }


@pytest.fixture
async def session(stack: Stack, fleet: dict[str, int]) -> AsyncIterator[AsyncSession]:
    async with stack.runtime.sessions() as session:
        yield session


def _ids(fleet: dict[str, int], *names: str) -> list[int]:
    return sorted(fleet[n] for n in names)


@pytest.mark.parametrize(
    ("target_type", "values", "expected"),
    [
        ("all", [], ["n1", "n2", "n3", "n4", "n5"]),
        ("node", ["n4", "n1"], ["n1", "n4"]),
        ("group", ["a"], ["n1", "n2", "n3"]),  # with every sub-group
        ("group", ["a1"], ["n2", "n3"]),
        ("group", ["a11", "b"], ["n3", "n4"]),
        ("group", ["a", "a1"], ["n1", "n2", "n3"]),  # overlapping groups: each node once
        ("tag", ["web"], ["n1", "n2"]),
        ("tag", ["db", "edge"], ["n2", "n3", "n4"]),  # any of them
        ("tag", ["nope"], []),
        ("tag", ["WEB"], ["n1", "n2"]),  # letter case does not count, on any database
        ("label", ["env=prod"], ["n1", "n2"]),
        ("label", ["env=prod", "tier=fe"], ["n2"]),  # all of them
        ("label", ["tier=fe"], ["n2", "n4"]),
        ("label", ["env=prod", "env=dev"], []),
    ],
)
async def test_resolve(
    session: AsyncSession,
    fleet: dict[str, int],
    target_type: TargetType,
    values: Sequence[str],
    expected: list[str],
) -> None:
    # Values name fixtures; the target itself takes ids for nodes and groups.
    raw = [str(fleet[v]) if v in fleet else v for v in values]
    assert await resolve_target(session, target_type, raw) == _ids(fleet, *expected)


@pytest.mark.parametrize(
    ("target_type", "error", "message"),
    [
        ("node", NodeNotFound, "target: no such node: 999999"),
        ("group", GroupNotFound, "target: no such group: 999999"),
    ],
)
async def test_a_missing_node_or_group_is_not_found(
    session: AsyncSession, target_type: TargetType, error: type[NotFound], message: str
) -> None:
    """As everywhere else: a missing thing is a 404, not a malformed request."""
    with pytest.raises(error, match=message):
        await resolve_target(session, target_type, ["999999"])


async def test_one_query_after_the_tree_walk(
    stack: Stack, session: AsyncSession, fleet: dict[str, int]
) -> None:
    for target_type, values in (
        ("group", [str(fleet["a"])]),
        ("tag", ["web"]),
        ("label", ["env=prod", "tier=fe"]),
        ("all", []),
        ("node", [str(fleet["n1"])]),
    ):
        with f.counting_statements(stack) as statements:
            await resolve_target(session, target_type, values)  # type: ignore[arg-type]
        walks = 1 if target_type == "group" else 0
        assert len(statements) == 1 + walks, (target_type, statements)


@pytest.mark.parametrize(
    ("target_type", "values", "message"),
    [
        ("node", [], "at least one value"),
        ("node", ["x"], "integers"),
        ("node", ["0"], "positive"),
        ("tag", ["  "], "at least one value"),
        ("label", ["novalue"], "invalid label selector"),
        ("label", ["bad key=1"], "invalid label selector"),
    ],
)
async def test_bad_targets(
    session: AsyncSession, target_type: TargetType, values: list[str], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        await resolve_target(session, target_type, values)
