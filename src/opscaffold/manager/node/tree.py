"""The group tree, walked in memory.

A fleet has at most thousands of groups, so one query loads them all and every walk (a subtree,
a chain of ancestors, a cycle check) is a dictionary lookup instead of a query per level.
`node_groups.parent_id` has no foreign key, so a parent that is gone makes a root, and a cycle
that slipped in (two concurrent moves) ends a walk instead of looping forever.
"""

from __future__ import annotations

from collections.abc import Iterable


class GroupTree:
    def __init__(self, edges: Iterable[tuple[int, int | None]]) -> None:
        """`edges` are (group id, parent id) pairs, in display order (sort_order, id)."""
        self.parent: dict[int, int | None] = dict(edges)
        self.children: dict[int | None, list[int]] = {}
        for group_id, parent_id in self.parent.items():
            key = parent_id if parent_id in self.parent else None
            self.children.setdefault(key, []).append(group_id)

    def __contains__(self, group_id: object) -> bool:
        return group_id in self.parent

    def subtree(self, root_id: int) -> list[int]:
        """The group and all its descendants, parents before children."""
        if root_id not in self.parent:
            return []
        seen = {root_id}
        order = [root_id]
        for group_id in order:  # grows while we walk: a breadth-first walk
            for child in self.children.get(group_id, ()):
                if child not in seen:
                    seen.add(child)
                    order.append(child)
        return order

    def ancestry(self, group_id: int | None) -> list[int]:
        """The chain from the root down to `group_id` (included); empty for no group."""
        chain: list[int] = []
        current = group_id
        while current is not None and current in self.parent and current not in chain:
            chain.append(current)
            current = self.parent[current]
        chain.reverse()
        return chain

    def roots(self) -> list[int]:
        return list(self.children.get(None, ()))

    def with_parent(self, group_id: int, parent_id: int | None) -> GroupTree:
        """The tree after moving one group (to compare configuration before and after)."""
        return GroupTree({**self.parent, group_id: parent_id}.items())
