"""Account security over gRPC, REST and Envoy: change password, sessions, revoke.

The gRPC tests run the real `cfd accounts` process against each users database and each
session store; the REST tests run the whole mesh behind Envoy and the edge.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pyotp
import pytest

from cfd.v1 import account_pb2
from envoy_support import RealMesh, running_mesh
from integration.test_accounts_service import (
    PASSWORD,
    Mesh,
    bearer,
    fails_with,
    mesh,  # noqa: F401 (a fixture)
    shared_state,  # noqa: F401 (a fixture)
    start_mesh,
    users_db,  # noqa: F401 (a fixture)
)
from mesh.errors import reason_of
from support import until

NEW_PASSWORD = "a fresh passphrase"


async def test_change_password_and_sessions_over_grpc(
    tmp_path: Path,
    users_db: dict[str, str],  # noqa: F811
    shared_state: dict[str, str],  # noqa: F811
) -> None:
    async with start_mesh(tmp_path, **users_db, **shared_state) as running:
        stub = running.stub
        credentials = account_pb2.SigninRequest(email="secure@example.com", password=PASSWORD)
        here = await stub.Signup(
            account_pb2.SignupRequest(email=credentials.email, password=PASSWORD)
        )
        phone = await stub.Signin(credentials)
        listed = await stub.ListSessions(
            account_pb2.ListSessionsRequest(), metadata=bearer(phone.access_token)
        )
        assert [s.current for s in listed.sessions] == [True, False]
        assert listed.sessions[0].client_address == "127.0.0.1"
        # The gRPC library's own user agent, as the service saw it.
        assert listed.sessions[1].user_agent.startswith("grpc-python")
        assert listed.sessions[1].create_time.seconds > 0

        # Bad input: a clear error and nothing changes.
        for request, field in (
            (account_pb2.ChangePasswordRequest(new_password=NEW_PASSWORD), "current_password"),
            (
                account_pb2.ChangePasswordRequest(current_password=PASSWORD, new_password="short"),
                "new_password",
            ),
        ):
            error = await fails_with(
                stub.ChangePassword(request, metadata=bearer(here.access_token))
            )
            assert (error.code(), reason_of(error)) == (
                grpc.StatusCode.INVALID_ARGUMENT,
                "VALIDATION_FAILED",
            ), field
        wrong = await fails_with(
            stub.ChangePassword(
                account_pb2.ChangePasswordRequest(
                    current_password="not my password", new_password=NEW_PASSWORD
                ),
                metadata=bearer(here.access_token),
            )
        )
        assert (wrong.code(), reason_of(wrong)) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "INVALID_CREDENTIALS",
        )
        unauthenticated = await fails_with(stub.ListSessions(account_pb2.ListSessionsRequest()))
        assert reason_of(unauthenticated) == "TOKEN_INVALID"

        changed = await stub.ChangePassword(
            account_pb2.ChangePasswordRequest(current_password=PASSWORD, new_password=NEW_PASSWORD),
            metadata=bearer(here.access_token),
        )
        assert changed.revoked_sessions == 1
        refused = await fails_with(
            stub.RefreshToken(account_pb2.RefreshTokenRequest(refresh_token=phone.refresh_token))
        )
        assert reason_of(refused) == "TOKEN_INVALID"

        async def phone_token_refused() -> bool:
            try:
                await stub.GetUser(
                    account_pb2.GetUserRequest(), metadata=bearer(phone.access_token)
                )
            except grpc.aio.AioRpcError as exc:
                return reason_of(exc) == "TOKEN_INVALID"
            return False

        await until(phone_token_refused, within=10)
        me = await stub.GetUser(account_pb2.GetUserRequest(), metadata=bearer(here.access_token))
        assert me.user.id == here.user.id

        # A new sign-in, then revoked by id from the first session.
        again = await stub.Signin(
            account_pb2.SigninRequest(email=credentials.email, password=NEW_PASSWORD)
        )
        listed = await stub.ListSessions(
            account_pb2.ListSessionsRequest(), metadata=bearer(here.access_token)
        )
        (other,) = [s.id for s in listed.sessions if not s.current]
        await stub.RevokeSession(
            account_pb2.RevokeSessionRequest(session_id=other), metadata=bearer(here.access_token)
        )
        gone = await fails_with(
            stub.RevokeSession(
                account_pb2.RevokeSessionRequest(session_id=other),
                metadata=bearer(here.access_token),
            )
        )
        assert (gone.code(), reason_of(gone)) == (grpc.StatusCode.NOT_FOUND, "SESSION_NOT_FOUND")
        refused = await fails_with(
            stub.RefreshToken(account_pb2.RefreshTokenRequest(refresh_token=again.refresh_token))
        )
        assert reason_of(refused) == "TOKEN_INVALID"
        logs = running.logs()
        for secret in (PASSWORD, NEW_PASSWORD, here.access_token, here.refresh_token):
            assert secret not in logs


async def test_two_factor_sign_in_over_grpc(mesh: Mesh) -> None:  # noqa: F811
    stub = mesh.stub
    signup = await stub.Signup(
        account_pb2.SignupRequest(email="2fa@example.com", password=PASSWORD)
    )
    token = bearer(signup.access_token)
    enrolment = await stub.EnrolTotp(account_pb2.EnrolTotpRequest(), metadata=token)
    assert enrolment.otpauth_uri.startswith("otpauth://totp/CFD%20Mesh:2fa%40example.com?")
    totp = pyotp.TOTP(enrolment.secret)
    first = totp.now()
    confirmed = await stub.ConfirmTotp(
        account_pb2.ConfirmTotpRequest(totp_code=first), metadata=token
    )
    assert len(confirmed.recovery_codes) == 10
    me = await stub.GetUser(account_pb2.GetUserRequest(), metadata=token)
    assert me.user.totp_enabled

    credentials = account_pb2.SigninRequest(email="2fa@example.com", password=PASSWORD)
    required = await fails_with(stub.Signin(credentials))
    assert (required.code(), reason_of(required)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "TOTP_REQUIRED",
    )
    replayed = await fails_with(
        stub.Signin(
            account_pb2.SigninRequest(email=credentials.email, password=PASSWORD, totp_code=first)
        )
    )
    assert reason_of(replayed) == "INVALID_CREDENTIALS"
    second = totp.at(time.time() + 30)
    signed_in = await stub.Signin(
        account_pb2.SigninRequest(email=credentials.email, password=PASSWORD, totp_code=second)
    )
    assert signed_in.user.totp_enabled
    recovered = await stub.Signin(
        account_pb2.SigninRequest(
            email=credentials.email, password=PASSWORD, recovery_code=confirmed.recovery_codes[0]
        )
    )
    assert recovered.user.id == signup.user.id
    not_again = await fails_with(
        stub.DisableTotp(
            account_pb2.DisableTotpRequest(
                password=PASSWORD, recovery_code=confirmed.recovery_codes[0]
            ),
            metadata=token,
        )
    )
    assert reason_of(not_again) == "INVALID_CREDENTIALS"
    await stub.DisableTotp(
        account_pb2.DisableTotpRequest(
            password=PASSWORD, recovery_code=confirmed.recovery_codes[1]
        ),
        metadata=token,
    )
    assert (await stub.Signin(credentials)).user.totp_enabled is False
    logs = mesh.logs()
    for secret in [enrolment.secret, first, second, *confirmed.recovery_codes]:
        assert secret not in logs


@pytest.fixture
def real_mesh(tmp_path: Path) -> Iterator[RealMesh]:
    with running_mesh(tmp_path) as running:
        yield running


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def reason(reply: httpx.Response) -> tuple[int, str]:
    body: dict[str, Any] = reply.json()
    reasons = [d["reason"] for d in body.get("details", []) if "reason" in d]
    return reply.status_code, reasons[0] if reasons else ""


async def test_sessions_and_password_over_rest_through_envoy_and_the_edge(
    real_mesh: RealMesh,
) -> None:
    async with (
        httpx.AsyncClient(base_url=real_mesh.envoy_url, timeout=10) as envoy,
        httpx.AsyncClient(base_url=real_mesh.edge_url, timeout=10) as edge,
    ):
        credentials = {"email": "rest@example.com", "password": PASSWORD}
        first = (
            await edge.post(
                "/v1/auth/signup", json=credentials, headers={"user-agent": "TestBrowser/9"}
            )
        ).json()
        second = (await envoy.post("/v1/auth/signin", json=credentials)).json()
        for front in (envoy, edge):
            assert (await front.get("/v1/users/me/sessions")).status_code == 401
            listed = await front.get("/v1/users/me/sessions", headers=auth(first["accessToken"]))
            assert listed.status_code == 200, listed.text
            sessions = listed.json()["sessions"]
            assert [s.get("current", False) for s in sessions] == [False, True]
            assert sessions[1]["userAgent"] == "TestBrowser/9"
            assert {"id", "createTime", "lastUseTime"} <= sessions[0].keys()
        bad = await envoy.post(
            "/v1/users/me:changePassword",
            json={"currentPassword": PASSWORD, "newPassword": "short"},
            headers=auth(first["accessToken"]),
        )
        assert reason(bad) == (400, "VALIDATION_FAILED")
        missing = await envoy.post(
            "/v1/users/me/sessions/no-such-session:revoke",
            json={},
            headers=auth(first["accessToken"]),
        )
        assert reason(missing) == (404, "SESSION_NOT_FOUND")
        changed = await envoy.post(
            "/v1/users/me:changePassword",
            json={"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD},
            headers=auth(first["accessToken"]),
        )
        assert changed.json() == {"revokedSessions": 1}
        refreshed = await edge.post(
            "/v1/auth/refresh", json={"refreshToken": second["refreshToken"]}
        )
        assert reason(refreshed) == (401, "TOKEN_INVALID")
        again = (
            await edge.post("/v1/auth/signin", json={**credentials, "password": NEW_PASSWORD})
        ).json()
        listed = await edge.get("/v1/users/me/sessions", headers=auth(again["accessToken"]))
        (other,) = [s["id"] for s in listed.json()["sessions"] if not s.get("current")]
        revoked = await edge.post(
            f"/v1/users/me/sessions/{other}:revoke", json={}, headers=auth(again["accessToken"])
        )
        assert revoked.status_code == 200, revoked.text
        refreshed = await envoy.post(
            "/v1/auth/refresh", json={"refreshToken": first["refreshToken"]}
        )
        assert reason(refreshed) == (401, "TOKEN_INVALID")

        # Two-factor authentication through Envoy, and sign-in asking for the code.
        token = auth(again["accessToken"])
        assert (await envoy.post("/v1/users/me/totp:enrol", json={})).status_code == 401
        enrolment = (await envoy.post("/v1/users/me/totp:enrol", json={}, headers=token)).json()
        totp = pyotp.TOTP(enrolment["secret"])
        bad = await envoy.post("/v1/users/me/totp:confirm", json={"totpCode": "x"}, headers=token)
        assert reason(bad) == (400, "VALIDATION_FAILED")
        confirmed = await envoy.post(
            "/v1/users/me/totp:confirm", json={"totpCode": totp.now()}, headers=token
        )
        assert len(confirmed.json()["recoveryCodes"]) == 10
        assert (await edge.get("/v1/users/me", headers=token)).json()["user"]["totpEnabled"]
        new_credentials = {**credentials, "password": NEW_PASSWORD}
        for front in (envoy, edge):
            required = await front.post("/v1/auth/signin", json=new_credentials)
            assert reason(required) == (401, "TOTP_REQUIRED")
        code = totp.at(time.time() + 30)
        signed_in = await envoy.post("/v1/auth/signin", json={**new_credentials, "totpCode": code})
        assert signed_in.status_code == 200, signed_in.text
        replayed = await edge.post("/v1/auth/signin", json={**new_credentials, "totpCode": code})
        assert reason(replayed) == (401, "INVALID_CREDENTIALS")
