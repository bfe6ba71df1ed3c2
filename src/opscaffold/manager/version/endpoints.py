from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from opscaffold.manager.db import end_read
from opscaffold.manager.deps import AuditDep, CurrentUser, RuntimeDep, SessionDep
from opscaffold.manager.errors import InvalidArgument, PackageFileMissing
from opscaffold.manager.kit.envelope import Envelope, Page
from opscaffold.manager.kit.multipart import Form, FormError, boundary_of, read_form
from opscaffold.manager.kit.pagination import PageDep
from opscaffold.manager.kit.responses import ok
from opscaffold.manager.kit.routes import API_PREFIX
from opscaffold.manager.kit.storable import IdPath, text_problem
from opscaffold.manager.limits import takes_uploads
from opscaffold.manager.models import Version
from opscaffold.manager.version import service
from opscaffold.manager.version.schemas import (
    Component,
    VersionDetail,
    VersionRead,
    VersionUpload,
)
from opscaffold.manager.version.storage import PackageStore

router = APIRouter(prefix=f"{API_PREFIX}/versions", tags=["versions"])
VersionId = IdPath
MAX_FILE_NAME = 128  # the column's length


def _upload_body() -> dict[str, Any]:
    """The OpenAPI request body of an upload: the form's text fields and its file."""
    schema = VersionUpload.model_json_schema()
    schema["properties"]["file"] = {"type": "string", "format": "binary"}
    schema["required"] = [*schema.get("required", []), "file"]
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


@router.get("", response_model=Envelope[Page[VersionRead]])
async def list_versions(
    session: SessionDep,
    page: PageDep,
    component: Component | None = None,
    os: Annotated[str | None, Query(max_length=32)] = None,
    arch: Annotated[str | None, Query(max_length=16)] = None,
) -> Envelope[Page[VersionRead]]:
    """Packages, newest upload first."""
    total, rows = await service.list_versions(
        session, component=component, os=os, arch=arch, offset=page.offset, limit=page.page_size
    )
    items = [VersionRead.model_validate(row) for row in rows]
    return ok(Page(total=total, items=items, page=page.page, page_size=page.page_size))


@router.post(
    "", response_model=Envelope[VersionDetail], status_code=201, openapi_extra=_upload_body()
)
@takes_uploads
async def upload_version(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: CurrentUser,
    audit: AuditDep,
) -> Envelope[VersionDetail]:
    """Upload a package (multipart/form-data: the fields below and `file`, at most
    `server.http.max_upload_size` bytes). The Manager signs its manifest, or checks the
    `signature` an offline signer made over it (`ops-manager keys sign`)."""
    # The upload may take long: the connection authorising it goes back to the pool meanwhile.
    await end_read(session)
    upload, received = await _receive(request, runtime.packages)
    audit.detail = {
        **upload.model_dump(include={"component", "version", "os", "arch"}),
        "file_name": received.file_name,
        "size": received.file.size,
        "sha256": received.file.sha256,
    }
    try:
        row = await service.create(
            session, runtime.packages, runtime.keys, upload, received, principal.user_id
        )
    except BaseException:
        received.file.discard()
        raise
    audit.resource_id = str(row.id)
    return ok(_detail(row))


@router.get("/{id}", response_model=Envelope[VersionDetail])
async def get_version(id: VersionId, session: SessionDep) -> Envelope[VersionDetail]:
    """A package with its manifest and signature, to check before installing it."""
    return ok(_detail(await service.get(session, id)))


@router.get(
    "/{id}/download",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "the package"},
        206: {"content": {"application/octet-stream": {}}, "description": "the range asked"},
        416: {"description": "the range asked lies outside the file"},
    },
)
async def download_version(id: VersionId, session: SessionDep, runtime: RuntimeDep) -> FileResponse:
    """The package's bytes; `Range` resumes a download. A daemon authenticates with its node
    token (`Authorization: Bearer <node token>`), a person with their access token."""
    row = await service.get(session, id)
    path = runtime.packages.path_of(row.file_path)
    if not path.is_file():
        raise PackageFileMissing(f"the file of version {id} is missing from storage")
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=row.file_name,
        headers={"X-Checksum-SHA256": row.hash_sha256},
    )


@router.delete("/{id}", response_model=Envelope[VersionRead])
async def delete_version(
    id: VersionId, session: SessionDep, runtime: RuntimeDep, audit: AuditDep
) -> Envelope[VersionRead]:
    """Remove a package no rollout is still using; its file is removed once committed."""
    row = await service.delete(session, runtime.packages, id)
    audit.detail = {
        "component": row.component,
        "version": row.version,
        "os": row.os,
        "arch": row.arch,
    }
    return ok(VersionRead.model_validate(row))


def _detail(row: Version) -> VersionDetail:
    return VersionDetail.model_validate(
        {
            **VersionRead.model_validate(row).model_dump(),
            "manifest": json.loads(row.manifest) if row.manifest else None,
            "signature": row.signature,
        }
    )


async def _receive(request: Request, store: PackageStore) -> tuple[VersionUpload, service.Received]:
    """Stream the form's file to the incoming folder while hashing it, then check the fields.
    Whatever is refused or cut short leaves no file behind."""
    try:
        boundary = boundary_of(request.headers.get("content-type", ""))
    except FormError as exc:
        raise _invalid("body", str(exc)) from None
    incoming = store.incoming()
    try:
        form = await read_form(request.stream(), boundary, "file", incoming.write)
        await incoming.finish()
        file_name = _file_name(form)
        return _fields(form), service.Received(incoming, file_name)
    except FormError as exc:
        incoming.discard()
        raise _invalid(f"body.{exc.field}" if exc.field != "body" else "body", str(exc)) from None
    except ClientDisconnect:
        # The client went away mid-upload: a refusal to audit, not a failure of ours.
        incoming.discard()
        raise _invalid("body", "the upload was cut short: the client disconnected") from None
    except BaseException:
        incoming.discard()
        raise


def _fields(form: Form) -> VersionUpload:
    for name, value in form.fields.items():
        if problem := text_problem(name):
            raise _invalid("body", f"a field name {problem}")
        if problem := text_problem(value):
            raise _invalid(f"body.{name}", problem)
    try:
        return VersionUpload.model_validate(form.fields)
    except ValidationError as exc:
        errors = [
            {
                "field": ".".join(["body", *(str(p) for p in err["loc"])]),
                "message": err["msg"],
                "type": err["type"],
            }
            for err in exc.errors()
        ]
        fields = ", ".join(e["field"] for e in errors)
        raise InvalidArgument(f"invalid request: {fields}", data={"errors": errors}) from None


def _file_name(form: Form) -> str:
    """The client's file name, kept for display and the download's name, never for a path."""
    name = form.filename
    if name is None:
        raise _invalid("body.file", "is required: the package file")
    problem = text_problem(name)
    if problem is None and (not name or len(name) > MAX_FILE_NAME):
        problem = f"file name must be 1 to {MAX_FILE_NAME} characters"
    if problem is None and (
        name in (".", "..") or any(c in name for c in "/\\") or not name.isprintable()
    ):
        problem = "file name must be a plain name: no path, no control characters"
    if problem is not None:
        raise _invalid("body.file", problem)
    return name


def _invalid(field: str, problem: str) -> InvalidArgument:
    error = {"field": field, "message": problem, "type": "value_error"}
    return InvalidArgument(f"invalid request: {field} {problem}", data={"errors": [error]})
