"""Versions: accepting signed packages, choosing the latest per platform, removing them."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

import sqlalchemy.exc
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.db import after_commit
from opscaffold.manager.errors import (
    BadPackageSignature,
    VersionAlreadyExists,
    VersionInUse,
    VersionNotFound,
)
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models import Version
from opscaffold.manager.version import repository
from opscaffold.manager.version.keys import KeyRing
from opscaffold.manager.version.repository import Platform
from opscaffold.manager.version.schemas import VersionUpload
from opscaffold.manager.version.storage import Incoming, PackageStore
from opscaffold.protocol.manifest import BadSignature, Manifest, timestamp
from opscaffold.protocol.versions import InvalidVersion
from opscaffold.protocol.versions import Version as VersionNumber


@dataclass(frozen=True, slots=True)
class Received:
    """A complete upload, still in the incoming folder."""

    file: Incoming
    file_name: str


def platform_of(version: Version | VersionUpload) -> Platform:
    return Platform(version.component, version.os, version.arch)


async def create(
    session: AsyncSession,
    store: PackageStore,
    keys: KeyRing,
    upload: VersionUpload,
    received: Received,
    created_by: int,
) -> Version:
    """Record a package: signed by the Manager, or carrying an offline signature that must
    verify with a trusted key over the manifest of exactly these bytes. The file is moved into
    place last; the caller discards it if this raises."""
    platform = platform_of(upload)
    # Held to the commit: uploads and deletes of a component take turns, each seeing the
    # others' packages when it chooses the latest.
    await repository.lock_component(session, upload.component)
    if await repository.exists(session, platform, upload.version):
        raise VersionAlreadyExists(
            f"{upload.component} {upload.version} for {upload.os}/{upload.arch} already exists"
        )
    manifest = Manifest(
        component=upload.component,
        version=upload.version,
        os=upload.os,
        arch=upload.arch,
        size=received.file.size,
        sha256=received.file.sha256,
        created_at=upload.created_at or timestamp(utcnow()),
    )
    signature, fingerprint = _signature(keys, manifest, upload.signature_bytes)
    name = store.new_name()
    row = Version(
        component=upload.component,
        version=upload.version,
        os=upload.os,
        arch=upload.arch,
        file_path=name,
        file_name=received.file_name,
        file_size=manifest.size,
        hash_sha256=manifest.sha256,
        signature=base64.b64encode(signature).decode(),
        manifest=manifest.canonical().decode(),
        key_fingerprint=fingerprint,
        release_notes=upload.release_notes,
        created_by=created_by,
    )
    try:
        await repository.add(session, row)
    except sqlalchemy.exc.IntegrityError as exc:  # the same package, uploaded at the same time
        raise VersionAlreadyExists() from exc
    await _recompute_latest(session, platform)
    await session.refresh(row)
    store.place(received.file, name)
    return row


def _signature(keys: KeyRing, manifest: Manifest, offline: bytes | None) -> tuple[bytes, str]:
    if offline is None:
        return keys.sign(manifest), keys.fingerprint
    try:
        return offline, keys.verify(manifest, offline)
    except BadSignature as exc:
        raise BadPackageSignature(
            "signature: does not verify with a trusted key over the manifest of this upload "
            f"({manifest.canonical().decode()})"
        ) from exc


async def list_versions(
    session: AsyncSession,
    *,
    component: str | None,
    os: str | None,
    arch: str | None,
    offset: int,
    limit: int,
) -> tuple[int, Sequence[Version]]:
    return await repository.page(
        session, component=component, os=os, arch=arch, offset=offset, limit=limit
    )


async def get(session: AsyncSession, version_id: int) -> Version:
    return await repository.get(session, version_id) or _not_found(version_id)


def _not_found(version_id: int) -> NoReturn:
    raise VersionNotFound(f"version {version_id} not found")


async def delete(session: AsyncSession, store: PackageStore, version_id: int) -> Version:
    """Remove a version no rollout still uses; its file goes once the removal is committed."""
    row = await get(session, version_id)
    await repository.lock_component(session, row.component)
    row = await repository.get(session, version_id, locked=True) or _not_found(version_id)
    if busy := await repository.unfinished_updates(session, row.component, row.version):
        raise VersionInUse(
            f"{row.component} {row.version} is still being rolled out to {busy} node(s)"
        )
    platform, name = platform_of(row), row.file_path
    await repository.delete(session, row)
    await _recompute_latest(session, platform)

    async def remove_file() -> None:
        store.remove(name)

    after_commit(session, remove_file)
    return row


async def _recompute_latest(session: AsyncSession, platform: Platform) -> None:
    """Mark the highest version of the platform, compared as versions (1.10.0 > 1.9.0)."""
    rows = [
        (id_, number)
        for id_, text in await repository.versions_of(session, platform)
        if (number := _parsed(text)) is not None
    ]
    latest = max(rows, key=lambda row: row[1], default=None)
    await repository.mark_latest(session, platform, latest[0] if latest else None)


def _parsed(text: str) -> VersionNumber | None:
    """A stored version as a version; a row written by other means that is not one never
    counts as the latest."""
    try:
        return VersionNumber(text)
    except InvalidVersion:
        return None
