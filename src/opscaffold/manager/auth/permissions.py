"""The permission table: every route of the app, who may call it, and how it is audited.

It is the single source of truth for RBAC (spec §6.1.2): `authorize` looks each request's route
up here, and a route missing from the table is refused (deny by default). A test walks every
route of the app and fails on one missing here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from starlette.routing import BaseRoute

from opscaffold.manager.kit.routes import API_PREFIX as API
from opscaffold.manager.kit.routes import iter_routes

ADMIN = frozenset({"admin"})
EDITORS = frozenset({"admin", "operator"})
EVERYONE = frozenset({"admin", "operator", "viewer"})


@dataclass(frozen=True, slots=True)
class Rule:
    roles: frozenset[str] | None  # None: public, no token needed
    action: str = ""  # audit action of a mutating route, "<resource>.<verb>"
    resource: str = ""  # audit resource type
    nodes: bool = False  # a daemon's node token is accepted too (package downloads)

    @property
    def public(self) -> bool:
        return self.roles is None


PUBLIC = Rule(roles=None)

# Who may send each type of daemon command. Operators run tasks on nodes, which is more than
# a ping or a restart; changing a node's configuration or software stays with admins.
COMMAND_ROLES: dict[str, frozenset[str]] = {
    "ping": EDITORS,
    "restart": EDITORS,
    "config": ADMIN,
    "update": ADMIN,
}

PERMISSIONS: dict[tuple[str, str], Rule] = {
    # probes, metrics and the API description are public by design
    ("GET", "/health"): PUBLIC,
    ("GET", "/livez"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", f"{API}/openapi.json"): PUBLIC,
    ("GET", f"{API}/docs"): PUBLIC,
    ("GET", f"{API}/docs/oauth2-redirect"): PUBLIC,
    ("GET", f"{API}/redoc"): PUBLIC,
    # auth
    ("POST", f"{API}/auth/login"): Rule(None, "auth.login", "session"),
    ("POST", f"{API}/auth/refresh"): Rule(None, "auth.refresh", "session"),
    ("POST", f"{API}/auth/logout"): Rule(EVERYONE, "auth.logout", "session"),
    ("GET", f"{API}/auth/me"): Rule(EVERYONE),
    ("PUT", f"{API}/auth/me/password"): Rule(EVERYONE, "auth.change_password", "user"),
    # users (user management: admin only)
    ("GET", f"{API}/system/users"): Rule(ADMIN),
    ("POST", f"{API}/system/users"): Rule(ADMIN, "user.create", "user"),
    ("GET", f"{API}/system/users/{{id}}"): Rule(ADMIN),
    ("PUT", f"{API}/system/users/{{id}}"): Rule(ADMIN, "user.update", "user"),
    ("DELETE", f"{API}/system/users/{{id}}"): Rule(ADMIN, "user.delete", "user"),
    # enrollment tokens (admin only)
    ("GET", f"{API}/enrollment-tokens"): Rule(ADMIN),
    ("POST", f"{API}/enrollment-tokens"): Rule(
        ADMIN, "enrollment_token.create", "enrollment_token"
    ),
    ("DELETE", f"{API}/enrollment-tokens/{{id}}"): Rule(
        ADMIN, "enrollment_token.revoke", "enrollment_token"
    ),
    # commands to daemons: editors reach the route, which checks the type (COMMAND_ROLES)
    ("POST", f"{API}/commands"): Rule(EDITORS, "command.send", "command"),
    ("GET", f"{API}/commands/{{id}}"): Rule(EDITORS),
    # nodes (spec §6.1.2: everyone reads, admin and operator edit, admin deletes); their
    # configuration may hold what a viewer should not read, so editors only
    ("GET", f"{API}/nodes"): Rule(EVERYONE),
    ("GET", f"{API}/nodes/{{id}}"): Rule(EVERYONE),
    ("PUT", f"{API}/nodes/{{id}}"): Rule(EDITORS, "node.update", "node"),
    ("DELETE", f"{API}/nodes/{{id}}"): Rule(ADMIN, "node.delete", "node"),
    ("GET", f"{API}/nodes/{{id}}/events"): Rule(EVERYONE),
    ("GET", f"{API}/nodes/{{id}}/agent"): Rule(EVERYONE),
    ("GET", f"{API}/nodes/{{id}}/metrics"): Rule(EVERYONE),
    ("GET", f"{API}/nodes/{{id}}/metrics/latest"): Rule(EVERYONE),
    ("GET", f"{API}/metrics/trend"): Rule(EVERYONE),
    ("GET", f"{API}/system/dashboard"): Rule(EVERYONE),
    ("GET", f"{API}/system/settings"): Rule(ADMIN),
    ("GET", f"{API}/nodes/{{id}}/timeline"): Rule(EVERYONE),
    ("GET", f"{API}/nodes/{{id}}/config"): Rule(EDITORS),
    ("PUT", f"{API}/nodes/{{id}}/config"): Rule(EDITORS, "node.set_config", "node"),
    ("GET", f"{API}/nodes/{{id}}/config/effective"): Rule(EDITORS),
    # node groups (spec §4.4: admin and operator edit, admin deletes)
    ("GET", f"{API}/groups"): Rule(EVERYONE),
    ("POST", f"{API}/groups"): Rule(EDITORS, "group.create", "group"),
    ("PUT", f"{API}/groups/{{id}}"): Rule(EDITORS, "group.update", "group"),
    ("DELETE", f"{API}/groups/{{id}}"): Rule(ADMIN, "group.delete", "group"),
    ("GET", f"{API}/groups/{{id}}/config"): Rule(EDITORS),
    ("PUT", f"{API}/groups/{{id}}/config"): Rule(EDITORS, "group.set_config", "group"),
    # versions (spec §6.1.2: everyone reads, admin and operator upload, admin deletes); a
    # daemon downloads packages with its node token
    ("GET", f"{API}/versions"): Rule(EVERYONE),
    ("POST", f"{API}/versions"): Rule(EDITORS, "version.upload", "version"),
    ("GET", f"{API}/versions/{{id}}"): Rule(EVERYONE),
    ("GET", f"{API}/versions/{{id}}/download"): Rule(EVERYONE, nodes=True),
    ("DELETE", f"{API}/versions/{{id}}"): Rule(ADMIN, "version.delete", "version"),
    # rollouts (spec §6.1.2 "deploy a version": admin and operator; everyone reads)
    ("POST", f"{API}/updates/deploy"): Rule(EDITORS, "rollout.deploy", "rollout"),
    ("GET", f"{API}/updates"): Rule(EVERYONE),
    ("GET", f"{API}/updates/{{batch_id}}/status"): Rule(EVERYONE),
    ("POST", f"{API}/updates/{{batch_id}}/pause"): Rule(EDITORS, "rollout.pause", "rollout"),
    ("POST", f"{API}/updates/{{batch_id}}/resume"): Rule(EDITORS, "rollout.resume", "rollout"),
    ("POST", f"{API}/updates/{{batch_id}}/cancel"): Rule(EDITORS, "rollout.cancel", "rollout"),
    ("POST", f"{API}/updates/{{batch_id}}/rollback"): Rule(EDITORS, "rollout.rollback", "rollout"),
    # alerts (ARCHITECTURE §5: everyone reads, admin and operator acknowledge and silence,
    # admin manages rules)
    ("GET", f"{API}/alerts"): Rule(EVERYONE),
    ("GET", f"{API}/alerts/{{id}}"): Rule(EVERYONE),
    ("POST", f"{API}/alerts/{{id}}/acknowledge"): Rule(EDITORS, "alert.acknowledge", "alert"),
    ("GET", f"{API}/alerts/rules"): Rule(EVERYONE),
    ("POST", f"{API}/alerts/rules"): Rule(ADMIN, "alert_rule.create", "alert_rule"),
    ("GET", f"{API}/alerts/rules/{{id}}"): Rule(EVERYONE),
    ("PUT", f"{API}/alerts/rules/{{id}}"): Rule(ADMIN, "alert_rule.update", "alert_rule"),
    ("DELETE", f"{API}/alerts/rules/{{id}}"): Rule(ADMIN, "alert_rule.delete", "alert_rule"),
    ("GET", f"{API}/alerts/silences"): Rule(EVERYONE),
    ("POST", f"{API}/alerts/silences"): Rule(EDITORS, "alert_silence.create", "alert_silence"),
    ("GET", f"{API}/alerts/silences/{{id}}"): Rule(EVERYONE),
    ("PUT", f"{API}/alerts/silences/{{id}}"): Rule(
        EDITORS, "alert_silence.update", "alert_silence"
    ),
    ("DELETE", f"{API}/alerts/silences/{{id}}"): Rule(
        EDITORS, "alert_silence.delete", "alert_silence"
    ),
    # alert notifications: channels are managed by admins (they hold secrets and reach out
    # of the network); everyone reads the notifications of an alert
    ("GET", f"{API}/alerts/channels"): Rule(ADMIN),
    ("POST", f"{API}/alerts/channels"): Rule(ADMIN, "channel.create", "channel"),
    ("GET", f"{API}/alerts/channels/{{id}}"): Rule(ADMIN),
    ("PUT", f"{API}/alerts/channels/{{id}}"): Rule(ADMIN, "channel.update", "channel"),
    ("DELETE", f"{API}/alerts/channels/{{id}}"): Rule(ADMIN, "channel.delete", "channel"),
    ("POST", f"{API}/alerts/channels/{{id}}/test"): Rule(ADMIN, "channel.test", "channel"),
    ("GET", f"{API}/alerts/{{id}}/notifications"): Rule(EVERYONE),
    # tasks (spec §6.1.2: everyone reads, admin and operator create and execute, admin
    # deletes); outputs may hold what a viewer should not read, so editors only
    ("GET", f"{API}/tasks"): Rule(EVERYONE),
    ("POST", f"{API}/tasks"): Rule(EDITORS, "task.create", "task"),
    ("GET", f"{API}/tasks/schedule/next"): Rule(EVERYONE),
    ("GET", f"{API}/tasks/{{id}}"): Rule(EVERYONE),
    ("PUT", f"{API}/tasks/{{id}}"): Rule(EDITORS, "task.update", "task"),
    ("DELETE", f"{API}/tasks/{{id}}"): Rule(ADMIN, "task.delete", "task"),
    ("POST", f"{API}/tasks/{{id}}/execute"): Rule(EDITORS, "task.execute", "task"),
    ("GET", f"{API}/tasks/{{id}}/executions"): Rule(EVERYONE),
    ("GET", f"{API}/executions/{{execution_id}}"): Rule(EVERYONE),
    ("GET", f"{API}/executions/{{execution_id}}/nodes/{{node_id}}/output"): Rule(EDITORS),
    ("GET", f"{API}/executions/{{execution_id}}/nodes/{{node_id}}/output/stream"): Rule(EDITORS),
    ("POST", f"{API}/executions/{{execution_id}}/cancel"): Rule(
        EDITORS, "execution.cancel", "execution"
    ),
    # audit log (admin only)
    ("GET", f"{API}/system/audit-logs"): Rule(ADMIN),
}


def rule_for(method: str, path_template: str) -> Rule | None:
    return PERMISSIONS.get((method, path_template))


def unlisted_routes(routes: Iterable[BaseRoute]) -> list[tuple[str, str]]:
    """Routes the table does not know: the app refuses to start with any."""
    return [key for key in iter_routes(routes) if rule_for(*key) is None]
