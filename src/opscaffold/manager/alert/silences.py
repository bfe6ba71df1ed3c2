"""Which active silences cover an alert: matched in memory against the silences of the
moment, loaded once (there are few), so a page of alerts or an evaluation's transitions cost
no query per alert."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from opscaffold.manager.models import AlertSilence
from opscaffold.manager.node.schemas import tag_key
from opscaffold.manager.node.tree import GroupTree


@dataclass(frozen=True, slots=True)
class Subject:
    """What a silence may name about an alert."""

    rule_id: int
    node_id: int
    group_id: int | None
    tags: Sequence[str]


class Silencer:
    def __init__(self, silences: Sequence[AlertSilence], tree: GroupTree | None) -> None:
        self._silences = list(silences)
        self._tree = tree or GroupTree(())

    @property
    def needs_tree(self) -> bool:
        return any(s.target_type == "group" for s in self._silences)

    def __bool__(self) -> bool:
        return bool(self._silences)

    def covering(self, subject: Subject) -> list[int]:
        """Ids of the silences that cover the subject, in id order."""
        if not self._silences:
            return []
        groups = {str(g) for g in self._tree.ancestry(subject.group_id)}
        tags = {tag_key(t) for t in subject.tags}
        found = []
        for silence in self._silences:
            value = silence.target_value
            kind = silence.target_type
            if (
                (kind == "rule" and value == str(subject.rule_id))
                or (kind == "node" and value == str(subject.node_id))
                or (kind == "group" and value in groups)
                or (kind == "tag" and tag_key(value) in tags)
            ):
                found.append(silence.id)
        return found
