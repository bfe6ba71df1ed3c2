from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_serializer, field_validator

from opscaffold.manager.agent.schemas import AgentRead
from opscaffold.manager.command.states import CommandState
from opscaffold.manager.errors import InvalidArgument
from opscaffold.manager.kit.clock import rfc3339
from opscaffold.manager.kit.storable import Id
from opscaffold.manager.node.states import NodeStatus

# The targets tasks and alert rules name, resolved by node.service.resolve_target. One
# definition: typing caches equal Literals, so two spellings in another order would make the
# OpenAPI document depend on which module was imported first.
TargetType = Literal["all", "group", "tag", "node"]
MAX_TAGS = 32
MAX_LABELS = 64
MAX_CONFIG_KEYS = 100
LABEL_KEY_PATTERN = r"^[A-Za-z0-9_.\-/]{1,63}$"
LABEL_KEY = re.compile(LABEL_KEY_PATTERN)
TAG_MAX_LENGTH = 64


def tag_key(tag: str) -> str:
    """What tags are matched and de-duplicated by: `Web` and `web` are one tag."""
    return tag.casefold()


def _folded_fits(tag: str) -> str:
    # node_tags stores the folded form, which can be longer ("ß" folds to "ss").
    if len(tag_key(tag)) > TAG_MAX_LENGTH:
        raise ValueError(f"at most {TAG_MAX_LENGTH} characters, also once case is folded")
    return tag


# No comma (the list filter takes tags comma-separated) and no surrounding blanks.
Tag = Annotated[
    str,
    Field(min_length=1, max_length=TAG_MAX_LENGTH, pattern=r"^[^,\s](?:[^,]*[^,\s])?$"),
    AfterValidator(_folded_fits),
]
LabelKey = Annotated[str, Field(pattern=LABEL_KEY_PATTERN)]
LabelValue = Annotated[str, Field(max_length=191)]
ConfigKey = Annotated[str, Field(pattern=r"^[a-z0-9_.]{1,64}$")]
ConfigValue = Annotated[str, Field(max_length=1024)]
NodeSort = Literal[
    "id",
    "-id",
    "hostname",
    "-hostname",
    "ip",
    "-ip",
    "status",
    "-status",
    "last_heartbeat",
    "-last_heartbeat",
    "created_at",
    "-created_at",
    "updated_at",
    "-updated_at",
]


def parse_selector(selector: str) -> tuple[str, str]:
    """A label selector `key=value` (the value may be empty, the key may not)."""
    key, sep, value = selector.partition("=")
    if not sep or not LABEL_KEY.fullmatch(key) or len(value) > 191:
        raise InvalidArgument(
            f"invalid label selector '{selector[:80]}': expected key=value with a key of "
            "1-63 characters [A-Za-z0-9_.-/] and a value of at most 191 characters"
        )
    return key, value


def distinct_casefold(values: list[str]) -> list[str]:
    """First spelling of each value, ignoring case: MySQL's default collation compares
    case-insensitively, so 'Web' and 'web' would be one key there and two elsewhere."""
    seen: dict[str, str] = {}
    for value in values:
        seen.setdefault(value.casefold(), value)
    return list(seen.values())


class GroupRef(BaseModel):
    id: int
    name: str


class NodeRead(BaseModel):
    """A node as in spec §4.1.1, with its group and agent embedded."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    uuid: str
    hostname: str
    ip: str = Field(description="the address the daemon reports")
    peer_ip: str | None = Field(description="the address the Manager saw it connect from")
    port: int
    group_id: int | None
    os: str | None
    arch: str | None
    kernel_version: str | None
    daemon_version: str | None
    cpu_cores: int | None
    memory_total: int | None
    disk_total: int | None
    status: NodeStatus
    last_heartbeat: datetime | None
    tags: list[str]
    labels: dict[str, str]
    created_at: datetime
    updated_at: datetime
    group: GroupRef | None = None
    agent: AgentRead | None = None

    @field_validator("tags", mode="before")
    @classmethod
    def _no_tags(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("labels", mode="before")
    @classmethod
    def _no_labels(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_serializer("last_heartbeat", "created_at", "updated_at")
    def _times(self, value: datetime | None) -> str | None:
        return rfc3339(value)


class NodeUpdate(BaseModel):
    """Only the fields given change; `null` ungroups, or clears tags or labels."""

    model_config = ConfigDict(extra="forbid")

    group_id: Id | None = None
    tags: list[Tag] | None = Field(default=None, max_length=MAX_TAGS)
    labels: dict[LabelKey, LabelValue] | None = Field(default=None, max_length=MAX_LABELS)

    @field_validator("tags")
    @classmethod
    def _distinct_tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else distinct_casefold(value)

    @field_validator("labels")
    @classmethod
    def _distinct_keys(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None and len(distinct_casefold(list(value))) != len(value):
            raise ValueError("label keys must differ in more than letter case")
        return value


class NodeEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    node_id: int
    event: str
    from_status: str | None
    to_status: str | None
    at: datetime
    detail: dict[str, Any] | None

    @field_serializer("at")
    def _time(self, value: datetime) -> str | None:
        return rfc3339(value)


class GroupRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str | None
    parent_id: int | None
    sort_order: int
    created_at: datetime
    updated_at: datetime
    children: list[GroupRead] | None = Field(
        default=None, description="sub-groups, only in the tree view (tree=true)"
    )

    @field_serializer("created_at", "updated_at")
    def _times(self, value: datetime) -> str | None:
        return rfc3339(value)


class GroupCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=255)
    parent_id: Id | None = None
    sort_order: int = Field(default=0, ge=-(2**31), le=2**31 - 1)

    @field_validator("name")
    @classmethod
    def _trimmed(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return value.strip()


class GroupUpdate(BaseModel):
    """Only the fields given change; `parent_id: null` moves the group to the top level."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=255)
    parent_id: Id | None = None
    sort_order: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)

    @field_validator("name")
    @classmethod
    def _trimmed(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("name must not be blank")
        return None if value is None else value.strip()


class NodeConfigBody(BaseModel):
    """One level's configuration: string keys to string values. A PUT replaces the whole map.

    Known keys are checked: `heartbeat_interval` and `metric_interval` are whole seconds from
    1 to 86400, and `heartbeat_interval` is shorter than the Manager's node.heartbeat_timeout.
    """

    model_config = ConfigDict(extra="forbid")

    config: dict[ConfigKey, ConfigValue] = Field(max_length=MAX_CONFIG_KEYS)


class ConfigDelivery(BaseModel):
    """The latest `config` command sent to a node's daemon and what became of it."""

    command_id: str
    state: CommandState = Field(
        description="done: the daemon applied it; sent: delivered, outcome awaited; pending: "
        "not delivered yet; failed: the daemon refused it (see error); expired: never delivered"
    )
    current: bool = Field(
        description="it carries the configuration shown; false when the effective "
        "configuration changed since without a push (e.g. the Manager's defaults)"
    )
    error: str | None
    created_at: datetime
    done_at: datetime | None

    @field_serializer("created_at", "done_at")
    def _times(self, value: datetime | None) -> str | None:
        return rfc3339(value)


class EffectiveConfigRead(BaseModel):
    config: dict[str, str]
    sources: dict[str, str] = Field(
        description="where each key comes from: 'node', 'group:<id>' or 'default'"
    )
    delivery: ConfigDelivery | None = Field(
        None,
        description="the latest configuration sent to the daemon; none when none was sent "
        "since the node enrolled (Register hands a daemon its configuration)",
    )
