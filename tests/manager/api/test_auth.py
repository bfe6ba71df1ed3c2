"""Login, refresh rotation, logout and the checks made on every request."""

from __future__ import annotations

import asyncio
import time

import httpx
import jwt
import pytest

from opscaffold.manager.app import create_app
from opscaffold.manager.auth.passwords import PasswordHasher
from opscaffold.manager.auth.tokens import TokenType
from opscaffold.manager.config import PasswordSettings
from opscaffold.manager.runtime import Runtime
from tests.manager.conftest import ADMIN_PASSWORD, Stack, bearer, login, make_user

ME = "/api/v1/auth/me"


async def test_login_sets_last_login_and_me_works(client: httpx.AsyncClient) -> None:
    data = await login(client)
    assert data["token_type"] == "Bearer"
    assert data["expires_in"] == 2 * 3600
    assert data["refresh_expires_in"] == 7 * 24 * 3600
    assert data["user"]["username"] == "admin"
    me = (await client.get(ME, headers=bearer(data["token"]))).json()["data"]
    assert me["last_login_ip"] == "203.0.113.7"
    assert me["last_login_at"].endswith("Z")
    assert "password_hash" not in me


async def test_unknown_user_and_wrong_password_look_the_same(client: httpx.AsyncClient) -> None:
    wrong = await client.post(
        "/api/v1/auth/login", json={"username": "admin", "password": "not-the-password"}
    )
    unknown = await client.post(
        "/api/v1/auth/login", json={"username": "nobody", "password": "not-the-password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    strip = {"request_id"}
    assert {k: v for k, v in wrong.json().items() if k not in strip} == {
        k: v for k, v in unknown.json().items() if k not in strip
    }
    assert wrong.json()["code"] == 1002


async def test_an_unknown_user_costs_the_same_argon2_verification_as_a_known_one(
    stack: Stack, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timing reveals nothing: both paths verify once, against hashes of the same cost (the
    work is counted, not timed, so a busy machine cannot make this flaky)."""
    hasher = stack.runtime.hasher
    verified: list[str] = []
    real = hasher._verify_sync

    def counting(password_hash: str, password: str) -> bool:
        verified.append(password_hash)
        return real(password_hash, password)

    monkeypatch.setattr(hasher, "_verify_sync", counting)
    for username in ("admin", "ghost"):
        response = await client.post(
            "/api/v1/auth/login", json={"username": username, "password": "x-wrong"}
        )
        assert response.status_code == 401
    known, unknown = verified
    assert known != unknown  # the user's own hash, then the stand-in
    cost = [h.split("$")[2:4] for h in verified]  # version and m=…,t=…,p=…
    assert cost[0] == cost[1]


@pytest.mark.parametrize("path", [ME, "/api/v1/system/users"])
async def test_missing_or_garbage_token_is_401(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 401
    bad = await client.get(path, headers=bearer("not.a.jwt"))
    assert bad.status_code == 401
    assert bad.json()["code"] == 1002


async def test_refresh_token_is_not_an_access_token(client: httpx.AsyncClient) -> None:
    data = await login(client)
    assert (await client.get(ME, headers=bearer(data["refresh_token"]))).status_code == 401


async def test_forged_tokens_are_refused(client: httpx.AsyncClient) -> None:
    token = (await login(client))["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = {
        "alg none": jwt.encode(claims, key="", algorithm="none"),
        "other key": jwt.encode(claims, "x" * 48, algorithm="HS256"),
        "other audience": _resign(token, claims | {"aud": "someone-else"}),
        "expired": _resign(token, claims | {"exp": int(time.time()) - 3600}),
        "admin role claimed": jwt.encode(claims | {"role": "admin"}, "y" * 48, algorithm="HS256"),
    }
    for name, value in forged.items():
        response = await client.get(ME, headers=bearer(value))
        assert response.status_code == 401, name


def _resign(token: str, claims: dict[str, object]) -> str:
    # Without the server's secret a changed claim cannot be signed: this is what an attacker has.
    header = jwt.get_unverified_header(token)
    return jwt.encode(claims, "guessed-secret-" * 4, algorithm=header["alg"])


async def test_refresh_rotates_and_reuse_revokes_the_family(client: httpx.AsyncClient) -> None:
    first = await login(client)
    rotated = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert rotated.status_code == 200
    second = rotated.json()["data"]
    assert second["refresh_token"] != first["refresh_token"]
    assert (await client.get(ME, headers=bearer(second["token"]))).status_code == 200

    # The old refresh token again: a replay. The whole session (family) ends.
    replay = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert replay.status_code == 401
    assert (await client.get(ME, headers=bearer(second["token"]))).status_code == 401
    again = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert again.status_code == 401
    # Another session of the same user is untouched.
    other = await login(client)
    assert (await client.get(ME, headers=bearer(other["token"]))).status_code == 200


async def test_logout_ends_the_session_on_the_next_request(client: httpx.AsyncClient) -> None:
    data = await login(client)
    headers = bearer(data["token"])
    assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 200
    assert (await client.get(ME, headers=headers)).status_code == 401
    refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": data["refresh_token"]}
    )
    assert refresh.status_code == 401


async def test_disabling_deleting_and_demoting_take_effect_at_once(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    bob = await make_user(client, admin_headers, "bob", role="admin")
    bob_headers = bearer((await login(client, "bob", "Str0ng-Password"))["token"])
    assert (await client.get("/api/v1/system/users", headers=bob_headers)).status_code == 200

    url = f"/api/v1/system/users/{bob['id']}"
    await client.put(url, json={"role": "viewer"}, headers=admin_headers)
    assert (await client.get("/api/v1/system/users", headers=bob_headers)).status_code == 403
    assert (await client.get(ME, headers=bob_headers)).status_code == 200

    await client.put(url, json={"status": 0}, headers=admin_headers)
    assert (await client.get(ME, headers=bob_headers)).status_code == 401
    await client.put(url, json={"status": 1}, headers=admin_headers)
    # Disabling ended bob's sessions: re-enabling does not bring the old token back.
    assert (await client.get(ME, headers=bob_headers)).status_code == 401

    bob_headers = bearer((await login(client, "bob", "Str0ng-Password"))["token"])
    await client.delete(url, headers=admin_headers)
    assert (await client.get(ME, headers=bob_headers)).status_code == 401


async def test_disabled_user_cannot_log_in(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    carol = await make_user(client, admin_headers, "carol")
    await client.put(
        f"/api/v1/system/users/{carol['id']}", json={"status": 0}, headers=admin_headers
    )
    response = await client.post(
        "/api/v1/auth/login", json={"username": "carol", "password": "Str0ng-Password"}
    )
    assert response.status_code == 401


async def test_change_own_password_ends_sessions(client: httpx.AsyncClient) -> None:
    data = await login(client)
    headers = bearer(data["token"])
    wrong = await client.put(
        "/api/v1/auth/me/password",
        json={"current_password": "nope-nope-1", "new_password": "New-Passw0rd-2"},
        headers=headers,
    )
    assert wrong.status_code == 400
    weak = await client.put(
        "/api/v1/auth/me/password",
        json={"current_password": ADMIN_PASSWORD, "new_password": "short"},
        headers=headers,
    )
    assert weak.status_code == 400
    assert weak.json()["code"] == 6004
    changed = await client.put(
        "/api/v1/auth/me/password",
        json={"current_password": ADMIN_PASSWORD, "new_password": "New-Passw0rd-2"},
        headers=headers,
    )
    assert changed.status_code == 200
    assert (await client.get(ME, headers=headers)).status_code == 401
    assert (await login(client, "admin", "New-Passw0rd-2"))["token"]


async def test_login_throttled_per_account(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        response = await client.post(
            "/api/v1/auth/login", json={"username": "admin", "password": "wrong-password"}
        )
        assert response.status_code == 401
    # Even the right password is refused while the account is throttled.
    throttled = await client.post(
        "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
    )
    assert throttled.status_code == 429
    assert throttled.json()["code"] == 1005
    assert 0 < int(throttled.headers["retry-after"]) <= 15 * 60
    # Unknown accounts are throttled the same way: nothing to learn from the difference.
    for _ in range(5):
        await client.post("/api/v1/auth/login", json={"username": "ghost", "password": "wrong-1"})
    ghost = await client.post("/api/v1/auth/login", json={"username": "ghost", "password": "x-1"})
    assert ghost.status_code == 429


async def test_login_throttled_per_ip(client: httpx.AsyncClient, stack: Stack) -> None:
    limit = stack.settings.auth.login_throttle.max_failures_per_ip
    for i in range(limit):
        await client.post("/api/v1/auth/login", json={"username": f"u{i}", "password": "wrong-1"})
    response = await client.post(
        "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 429


async def test_password_hashing_does_not_stall_other_requests(
    client: httpx.AsyncClient, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With production's argon2 cost, probes answered while a login hashes finish first."""
    hasher = PasswordHasher(PasswordSettings())  # the library's default cost
    monkeypatch.setattr(stack.runtime, "hasher", hasher)
    finished: list[str] = []

    async def log_in() -> None:
        await client.post(
            "/api/v1/auth/login", json={"username": "admin", "password": "wrong-pw-1"}
        )
        finished.append("login")

    async def probe(i: int) -> None:
        await asyncio.sleep(0)  # let the login start hashing first
        assert (await client.get("/livez")).status_code == 200
        finished.append(f"probe{i}")

    try:
        await asyncio.gather(log_in(), *(probe(i) for i in range(5)))
    finally:
        hasher.close()
    assert finished[-1] == "login", finished


async def test_logout_reaches_every_replica(client: httpx.AsyncClient, stack: Stack) -> None:
    """A second Manager on the same database (and Redis) refuses a token the first revoked."""
    replica_runtime = Runtime.build(stack.settings)
    replica = create_app(stack.settings, runtime=replica_runtime)
    transport = httpx.ASGITransport(app=replica)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://replica") as other:
            headers = bearer((await login(client))["token"])
            assert (await other.get(ME, headers=headers)).status_code == 200  # cached there now
            assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 200
            assert (await other.get(ME, headers=headers)).status_code == 401
    finally:
        await replica_runtime.close()


LOGIN = "/api/v1/auth/login"


async def test_every_spelling_of_a_name_shares_one_login_throttle(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack
) -> None:
    """MariaDB's collation reads these as one name; each must not bring guesses of its own."""
    await make_user(client, admin_headers, "victim")
    spellings = ["victim", "victim ", "vìctim", "vıctim", "Victim"]
    assert len(spellings) == stack.settings.auth.login_throttle.max_failures_per_account
    for name in spellings:
        wrong = await client.post(LOGIN, json={"username": name, "password": "wrong-password"})
        assert wrong.status_code == 401, name
    for name in [*spellings, "VICTIM", "ｖｉｃｔｉｍ"]:
        right = await client.post(LOGIN, json={"username": name, "password": "Str0ng-Password"})
        assert right.status_code == 429, name


@pytest.mark.parametrize("spelling", ["Admin", "ADMIN", " admin"])
async def test_login_ignores_letter_case_and_surrounding_blanks(
    client: httpx.AsyncClient, spelling: str
) -> None:
    data = await login(client, spelling)
    assert data["user"]["username"] == "admin"  # the name as created


class GatedHasher(PasswordHasher):
    """Real argon2, entered only when the test opens the gate: the logins stay in password
    verification for as long as the test needs them there."""

    def __init__(self, settings: PasswordSettings, expected: int) -> None:
        super().__init__(settings)
        self.gate = asyncio.Event()
        self.all_in = asyncio.Event()
        self.waiting, self.expected = 0, expected

    async def verify(self, password_hash: str | None, password: str) -> bool:
        self.waiting += 1
        if self.waiting == self.expected:
            self.all_in.set()
        await self.gate.wait()
        return await super().verify(password_hash, password)


async def test_password_checks_hold_no_database_connection(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Six logins in password verification at once, and the database still answers (SQLite
    has a single connection: a login holding it would stall every request and heartbeat)."""
    hasher = GatedHasher(stack.settings.auth.password, expected=6)
    monkeypatch.setattr(stack.runtime, "hasher", hasher)
    body = {"username": "admin", "password": ADMIN_PASSWORD}
    logins = [asyncio.create_task(client.post(LOGIN, json=body)) for _ in range(6)]
    try:
        async with asyncio.timeout(20):
            await hasher.all_in.wait()  # every login is past its user lookup
            users = await client.get("/api/v1/system/users", headers=admin_headers)
        assert users.status_code == 200
        assert not any(task.done() for task in logins)
        hasher.gate.set()
        async with asyncio.timeout(20):
            responses = await asyncio.gather(*logins)
        assert [r.status_code for r in responses] == [200] * 6
    finally:
        hasher.gate.set()
        for task in logins:
            task.cancel()
        await asyncio.gather(*logins, return_exceptions=True)
        hasher.close()


@pytest.mark.parametrize("username", ["\ufdfa" * 64, "\u200b", "ǅ" * 64])
async def test_names_that_grow_or_vanish_when_folded_are_refused_cleanly(
    client: httpx.AsyncClient, username: str
) -> None:
    """Compatibility forms expand (one character to eighteen) or fold to nothing: still just
    a wrong login, never a database error."""
    response = await client.post(LOGIN, json={"username": username, "password": "x-wrong-1"})
    assert response.status_code == 401, response.text
    assert response.json()["code"] == 1002


@pytest.mark.parametrize(
    "change",
    [
        {"exp": 1e308},
        {"exp": 2**70},
        {"sub": str(2**63)},
        {"sub": "-1"},
        {"sub": "1\x00"},
    ],
)
@pytest.mark.parametrize("kind", ["access", "refresh"])
async def test_validly_signed_claims_out_of_range_are_401(
    client: httpx.AsyncClient, stack: Stack, change: dict[str, object], kind: TokenType
) -> None:
    # Signed with the Manager's own secret: only the claims' values are wrong.
    issued = await login(client)
    token = issued["token" if kind == "access" else "refresh_token"]
    claims = jwt.decode(token, options={"verify_signature": False}) | change
    signed = jwt.encode(claims, stack.runtime.tokens._secrets[kind], algorithm="HS256")
    if kind == "access":
        response = await client.get(ME, headers=bearer(signed))
    else:
        response = await client.post("/api/v1/auth/refresh", json={"refresh_token": signed})
    assert response.status_code == 401, response.text
    assert response.json()["code"] == 1002
