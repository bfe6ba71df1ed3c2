from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from opscaffold.manager.auth import service
from opscaffold.manager.auth.schemas import LoginRequest, LoginResult, RefreshRequest, TokenPair
from opscaffold.manager.db import after_commit
from opscaffold.manager.deps import (
    AuditDep,
    AuthToolsDep,
    CurrentUser,
    SessionDep,
    request_ip,
)
from opscaffold.manager.errors import Unauthenticated
from opscaffold.manager.kit.envelope import EmptyData, Envelope
from opscaffold.manager.kit.responses import error_response, ok
from opscaffold.manager.kit.routes import API_PREFIX
from opscaffold.manager.user import service as user_service
from opscaffold.manager.user.schemas import PasswordChange, UserRead

router = APIRouter(prefix=f"{API_PREFIX}/auth", tags=["auth"])


@router.post("/login", response_model=Envelope[LoginResult])
async def login(
    body: LoginRequest,
    request: Request,
    session: SessionDep,
    auth: AuthToolsDep,
    audit: AuditDep,
) -> Envelope[LoginResult]:
    audit.detail["username"] = body.username
    outcome = await service.login(
        session, auth, body.username, body.password.get_secret_value(), request_ip(request)
    )
    audit.user_id, audit.username = outcome.user.id, outcome.user.username
    audit.resource_id = str(outcome.user.id)
    user = UserRead.model_validate(outcome.user)
    return ok(LoginResult(**outcome.tokens.model_dump(), user=user))


@router.post("/refresh", response_model=Envelope[TokenPair])
async def refresh(
    body: RefreshRequest, session: SessionDep, auth: AuthToolsDep, audit: AuditDep
) -> Envelope[TokenPair] | JSONResponse:
    outcome = await service.refresh(session, auth, body.refresh_token)
    audit.user_id, audit.username = outcome.user.id, outcome.user.username
    if outcome.tokens is None:
        # A replay: commit the family's revocation, then refuse.
        audit.error = "refresh token reused; session revoked"
        family = outcome.family_id
        await auth.states.forget_session(outcome.user.id, family)
        after_commit(session, lambda: auth.states.forget_session(outcome.user.id, family))
        return error_response(Unauthenticated("refresh token was already used"))
    return ok(outcome.tokens)


@router.post("/logout", response_model=Envelope[EmptyData])
async def logout(
    principal: CurrentUser, session: SessionDep, auth: AuthToolsDep
) -> Envelope[EmptyData]:
    await service.logout(session, principal.family_id)
    forget = auth.states.forget_session
    await forget(principal.user_id, principal.family_id)
    after_commit(session, lambda: forget(principal.user_id, principal.family_id))
    return ok(EmptyData())


@router.get("/me", response_model=Envelope[UserRead])
async def get_me(principal: CurrentUser, session: SessionDep) -> Envelope[UserRead]:
    user = await user_service.get(session, principal.user_id)
    return ok(UserRead.model_validate(user))


@router.put("/me/password", response_model=Envelope[EmptyData])
async def change_my_password(
    body: PasswordChange,
    principal: CurrentUser,
    session: SessionDep,
    auth: AuthToolsDep,
    audit: AuditDep,
) -> Envelope[EmptyData]:
    audit.resource_id = str(principal.user_id)
    await service.change_own_password(
        session,
        auth,
        principal.user_id,
        body.current_password.get_secret_value(),
        body.new_password.get_secret_value(),
    )
    forget = auth.states.forget_user
    await forget(principal.user_id)
    after_commit(session, lambda: forget(principal.user_id))
    return ok(EmptyData())
