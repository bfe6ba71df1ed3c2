from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from opscaffold.manager.deps import AuditDep, CurrentUser, RuntimeDep, SessionDep
from opscaffold.manager.kit.envelope import EmptyData, Envelope, Page
from opscaffold.manager.kit.pagination import PageDep
from opscaffold.manager.kit.responses import ok
from opscaffold.manager.kit.routes import API_PREFIX
from opscaffold.manager.kit.storable import BIGINT_MAX, IdPath
from opscaffold.manager.node import service
from opscaffold.manager.node.schemas import (
    EffectiveConfigRead,
    GroupCreate,
    GroupRead,
    GroupUpdate,
    NodeConfigBody,
    NodeEventRead,
    NodeRead,
    NodeSort,
    NodeUpdate,
)
from opscaffold.manager.node.states import NodeStatus

router = APIRouter(prefix=f"{API_PREFIX}/nodes", tags=["nodes"])
group_router = APIRouter(prefix=f"{API_PREFIX}/groups", tags=["groups"])
NodeId = IdPath
GroupId = IdPath


def config_change(runtime: RuntimeDep, principal: CurrentUser) -> service.ConfigChange:
    return service.ConfigChange(runtime.settings, principal.user_id, runtime.command_bus)


ConfigChangeDep = Annotated[service.ConfigChange, Depends(config_change)]


# -- nodes --------------------------------------------------------------------------------
@router.get("", response_model=Envelope[Page[NodeRead]])
async def list_nodes(
    session: SessionDep,
    page: PageDep,
    group_id: Annotated[
        int | None, Query(ge=1, le=BIGINT_MAX, description="the group and all its sub-groups")
    ] = None,
    status: NodeStatus | None = None,
    keyword: Annotated[
        str | None, Query(max_length=128, description="substring of hostname or ip")
    ] = None,
    tags: Annotated[
        str | None, Query(max_length=2200, description="comma-separated; a node must have all")
    ] = None,
    label: Annotated[
        list[str] | None,
        Query(description="label selector key=value; repeat it, a node must match all"),
    ] = None,
    sort: Annotated[NodeSort, Query(description="a column, '-' first for descending")] = "id",
) -> Envelope[Page[NodeRead]]:
    filters = service.NodeFilter(
        group_id=group_id,
        status=status,
        keyword=keyword,
        tags=tags,
        labels=label or (),
        sort=sort,
    )
    total, items = await service.list_nodes(
        session, filters, offset=page.offset, limit=page.page_size
    )
    return ok(Page(total=total, items=items, page=page.page, page_size=page.page_size))


@router.get("/{id}", response_model=Envelope[NodeRead])
async def get_node(id: NodeId, session: SessionDep) -> Envelope[NodeRead]:
    return ok(await service.get(session, id))


@router.put("/{id}", response_model=Envelope[NodeRead])
async def update_node(
    id: NodeId,
    body: NodeUpdate,
    session: SessionDep,
    change: ConfigChangeDep,
    audit: AuditDep,
) -> Envelope[NodeRead]:
    audit.detail = {"changed": sorted(body.model_fields_set)}
    node = await service.update(session, id, body, change)
    return ok(node)


@router.delete("/{id}", response_model=Envelope[EmptyData])
async def delete_node(id: NodeId, session: SessionDep, audit: AuditDep) -> Envelope[EmptyData]:
    node = await service.delete(session, id)
    audit.detail = {"hostname": node.hostname, "uuid": node.uuid, "ip": node.ip}
    return ok(EmptyData())


@router.get("/{id}/events", response_model=Envelope[Page[NodeEventRead]])
async def list_node_events(
    id: NodeId, session: SessionDep, page: PageDep
) -> Envelope[Page[NodeEventRead]]:
    total, rows = await service.events(session, id, offset=page.offset, limit=page.page_size)
    items = [NodeEventRead.model_validate(r) for r in rows]
    return ok(Page(total=total, items=items, page=page.page, page_size=page.page_size))


@router.get("/{id}/config", response_model=Envelope[NodeConfigBody])
async def get_node_config(id: NodeId, session: SessionDep) -> Envelope[NodeConfigBody]:
    """The node's own configuration (without what it inherits)."""
    return ok(NodeConfigBody(config=await service.get_config(session, "node", id)))


@router.put("/{id}/config", response_model=Envelope[NodeConfigBody])
async def set_node_config(
    id: NodeId,
    body: NodeConfigBody,
    session: SessionDep,
    change: ConfigChangeDep,
    audit: AuditDep,
) -> Envelope[NodeConfigBody]:
    """Replace the node's own configuration (an empty map clears it); the node's daemon is
    sent its new effective configuration."""
    sent = await service.set_node_config(session, id, body.config, change)
    audit.detail = {"keys": sorted(body.config), "nodes": sent}
    return ok(body)


@router.get("/{id}/config/effective", response_model=Envelope[EffectiveConfigRead])
async def get_effective_node_config(
    id: NodeId, session: SessionDep, runtime: RuntimeDep
) -> Envelope[EffectiveConfigRead]:
    """What the node runs with: its own keys › the nearest group's up the tree › defaults."""
    return ok(await service.explain_config(session, id, runtime.settings))


# -- groups -------------------------------------------------------------------------------
@group_router.get("", response_model=Envelope[list[GroupRead]])
async def list_groups(
    session: SessionDep,
    tree: Annotated[bool, Query(description="nest sub-groups under their parents")] = False,
) -> Envelope[list[GroupRead]]:
    return ok(await service.list_groups(session, tree=tree))


@group_router.post("", response_model=Envelope[GroupRead], status_code=201)
async def create_group(
    body: GroupCreate, session: SessionDep, audit: AuditDep
) -> Envelope[GroupRead]:
    audit.detail = {"name": body.name, "parent_id": body.parent_id}
    group = await service.create_group(session, body)
    audit.resource_id = str(group.id)
    return ok(GroupRead.model_validate(group))


@group_router.put("/{id}", response_model=Envelope[GroupRead])
async def update_group(
    id: GroupId,
    body: GroupUpdate,
    session: SessionDep,
    change: ConfigChangeDep,
    audit: AuditDep,
) -> Envelope[GroupRead]:
    audit.detail = {"changed": sorted(body.model_fields_set)}
    group = await service.update_group(session, id, body, change)
    return ok(GroupRead.model_validate(group))


@group_router.delete("/{id}", response_model=Envelope[EmptyData])
async def delete_group(id: GroupId, session: SessionDep, audit: AuditDep) -> Envelope[EmptyData]:
    group = await service.delete_group(session, id)
    audit.detail = {"name": group.name}
    return ok(EmptyData())


@group_router.get("/{id}/config", response_model=Envelope[NodeConfigBody])
async def get_group_config(id: GroupId, session: SessionDep) -> Envelope[NodeConfigBody]:
    """The group's own configuration (without what it inherits from its parents)."""
    return ok(NodeConfigBody(config=await service.get_config(session, "group", id)))


@group_router.put("/{id}/config", response_model=Envelope[NodeConfigBody])
async def set_group_config(
    id: GroupId,
    body: NodeConfigBody,
    session: SessionDep,
    change: ConfigChangeDep,
    audit: AuditDep,
) -> Envelope[NodeConfigBody]:
    """Replace the group's own configuration (an empty map clears it); every node in the
    group or its sub-groups is sent its new effective configuration."""
    sent = await service.set_group_config(session, id, body.config, change)
    audit.detail = {"keys": sorted(body.config), "nodes": sent}
    return ok(body)
