"""Domain errors: each carries its HTTP status, spec error code (appendix A) and gRPC status.

One handler renders them for HTTP (app.py) and one for gRPC; services only raise.
"""

from __future__ import annotations

from typing import Any, ClassVar

import grpc


class DomainError(Exception):
    http_status: ClassVar[int] = 500
    code: ClassVar[int] = 1006
    grpc_status: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL
    default_message: ClassVar[str] = "internal error"

    def __init__(self, message: str | None = None, *, data: Any = None) -> None:
        self.message = message or self.default_message
        self.data = data
        super().__init__(self.message)


# -- general (1xxx) -------------------------------------------------------------------------
class InvalidArgument(DomainError):
    http_status, code, grpc_status = 400, 1001, grpc.StatusCode.INVALID_ARGUMENT
    default_message = "invalid argument"


class Unauthenticated(DomainError):
    http_status, code, grpc_status = 401, 1002, grpc.StatusCode.UNAUTHENTICATED
    default_message = "authentication required"


class PermissionDenied(DomainError):
    http_status, code, grpc_status = 403, 1003, grpc.StatusCode.PERMISSION_DENIED
    default_message = "permission denied"


class NotFound(DomainError):
    http_status, code, grpc_status = 404, 1004, grpc.StatusCode.NOT_FOUND
    default_message = "resource not found"


class RateLimited(DomainError):
    http_status, code, grpc_status = 429, 1005, grpc.StatusCode.RESOURCE_EXHAUSTED
    default_message = "too many requests"

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message, data={"retry_after": retry_after})
        self.retry_after = retry_after


class InternalError(DomainError):
    """1006 continues appendix A's general area: an unexpected failure, details only in logs."""


class MethodNotAllowed(DomainError):
    http_status, code, grpc_status = 405, 1007, grpc.StatusCode.UNIMPLEMENTED
    default_message = "method not allowed"


class Conflict(DomainError):
    http_status, code, grpc_status = 409, 1008, grpc.StatusCode.FAILED_PRECONDITION
    default_message = "conflict"


# -- nodes (2xxx, spec) --------------------------------------------------------------------
class NodeNotFound(NotFound):
    code = 2001
    default_message = "node not found"


class NodeAlreadyExists(Conflict):
    code = 2002
    default_message = "node already exists"


class NodeGone(Unauthenticated):
    """The node was deleted while its daemon still reports: its credential is dead."""

    default_message = "node was deleted"


class NodeCredentialRefused(Unauthenticated):
    """A daemon's call without a credential that names a node (node token or certificate),
    or a Register without a usable enrollment token. `reason` labels it for the metric and
    the audit trail."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class NodeForbidden(PermissionDenied):
    """A daemon's credential is good, but not for this: it names another node, or a node
    that is enrolled already. `reason` labels it for the metric and the audit trail."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


# Refusals of a daemon's identity: counted and audited at the gRPC edge.
NODE_REFUSALS = (NodeCredentialRefused, NodeForbidden)


class NodeOffline(InvalidArgument):
    code = 2003
    default_message = "node is offline"


# Node groups continue the node area (the spec names no group errors).
class GroupNotFound(NotFound):
    code = 2004
    default_message = "group not found"


class GroupAlreadyExists(Conflict):
    code = 2005
    default_message = "a group with this name already exists under the same parent"


class GroupNotEmpty(Conflict):
    code = 2006
    default_message = "group still has nodes or child groups"


# -- versions (3xxx, spec) -----------------------------------------------------------------
class VersionNotFound(NotFound):
    code = 3001
    default_message = "version not found"


class VersionAlreadyExists(Conflict):
    code = 3002
    default_message = "this component, version, os and arch already exist"


class BadPackageSignature(InvalidArgument):
    code = 3003
    default_message = "the signature does not verify with a trusted key"


# Versions continue the spec's area.
class VersionInUse(Conflict):
    code = 3004
    default_message = "a rollout still uses this version"


class PackageFileMissing(InternalError):
    code = 3005
    default_message = "the package file is missing from storage"


class PayloadTooLarge(DomainError):
    """A request body beyond the route's limit (server.http.max_body_size, or the upload limit
    of a route declared to take uploads)."""

    http_status, code, grpc_status = 413, 1010, grpc.StatusCode.RESOURCE_EXHAUSTED
    default_message = "request body too large"


class RequestTimeout(DomainError):
    """The request body did not arrive within server.http.read_timeout."""

    http_status, code, grpc_status = 408, 1011, grpc.StatusCode.DEADLINE_EXCEEDED
    default_message = "request body not received in time"


class IngestBusy(DomainError):
    """The ingest queue is full, or a batch failed: the daemon keeps the report and resends."""

    http_status, code, grpc_status = 503, 1009, grpc.StatusCode.RESOURCE_EXHAUSTED
    default_message = "the Manager is busy; retry later"


# -- infrastructure (5xxx) -----------------------------------------------------------------
class DatabaseError(DomainError):
    http_status, code, grpc_status = 500, 5001, grpc.StatusCode.UNAVAILABLE
    default_message = "database error"


class DatabaseUnavailable(DatabaseError):
    """The database did not answer in time or cannot be reached: nothing is wrong with the
    request, so the caller is told to retry (503) rather than that the server failed (500)."""

    http_status = 503
    default_message = "database unavailable; retry later"


class CacheError(DomainError):
    http_status, code, grpc_status = 500, 5002, grpc.StatusCode.UNAVAILABLE
    default_message = "cache error"


# -- users (6xxx, ours) --------------------------------------------------------------------
class UserNotFound(NotFound):
    code = 6001
    default_message = "user not found"


class UserAlreadyExists(Conflict):
    code = 6002
    default_message = "a user with this username or email already exists"


class LastAdminProtected(Conflict):
    code = 6003
    default_message = "the last active admin cannot be deleted, disabled or demoted"


class PasswordPolicyViolation(InvalidArgument):
    code = 6004
    default_message = "password does not meet the policy"


class WrongPassword(InvalidArgument):
    code = 6005
    default_message = "current password is wrong"


# -- rollouts (3xxx: continues the design's version area) ----------------------------------
class UpdateRecordNotFound(NotFound):
    code = 3011
    default_message = "update record not found"


class UpdateTransitionRefused(Conflict):
    code = 3012
    default_message = "the update cannot move to that state from the one it is in"


class RolloutNotFound(NotFound):
    code = 3013
    default_message = "rollout not found"


class NoEligibleNodes(InvalidArgument):
    """A deploy whose target holds no node that can take the version; the message says why."""

    code = 3014
    default_message = "no node of the target can take this version"


class RolloutTransitionRefused(Conflict):
    """Pause, resume or cancel asked of a rollout in a state that does not allow it."""

    code = 3015
    default_message = "the rollout cannot do that in its current state"


# -- alerts (7xxx, ours) -------------------------------------------------------------------
class AlertRuleNotFound(NotFound):
    code = 7001
    default_message = "alert rule not found"


class AlertNotFound(NotFound):
    code = 7002
    default_message = "alert not found"


class AlertSilenceNotFound(NotFound):
    code = 7003
    default_message = "alert silence not found"


# -- alert notifications (7xxx, ours: 71xx for channels) -----------------------------------
class ChannelNotFound(NotFound):
    code = 7101
    default_message = "notification channel not found"


class ChannelAlreadyExists(Conflict):
    code = 7102
    default_message = "a notification channel with this name already exists"


# -- tasks (4xxx: the design's task area) ---------------------------------------------------
class TaskNotFound(NotFound):
    code = 4001
    default_message = "task not found"


class ExecutionNotFound(NotFound):
    code = 4011
    default_message = "execution not found"


class ExecutionTransitionRefused(Conflict):
    code = 4012
    default_message = "the execution cannot move to that state from the one it is in"


class TaskBusy(Conflict):
    """A task with executions still pending or running cannot be deleted."""

    code = 4013
    default_message = "the task has executions under way"


class NoTargetNodes(InvalidArgument):
    code = 4014
    default_message = "the task's target names no node"
