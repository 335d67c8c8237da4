"""Email verification and password reset over REST, through the edge and Envoy, with the
real services (`cfd up --envoy`) sending to a real SMTP server on loopback."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from envoy_support import RealMesh, running_mesh
from smtp_support import SmtpServer, body_of, smtp_server
from support import wait_for

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpServer) -> Iterator[RealMesh]:
    with running_mesh(
        tmp_path_factory.mktemp("email"),
        CFD_SMTP_HOST="127.0.0.1",
        CFD_SMTP_PORT=str(smtp.port),
        CFD_SMTP_SECURITY="none",
        CFD_MAIL_FROM="CFD Mesh <no-reply@broker.example>",
        CFD_PUBLIC_URL="https://trade.broker.example",
        CFD_REQUIRE_EMAIL_VERIFICATION="on",
    ) as running:
        yield running


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def reason(reply: httpx.Response) -> tuple[int, str]:
    body: dict[str, Any] = reply.json()
    reasons = [d["reason"] for d in body.get("details", []) if "reason" in d]
    return reply.status_code, reasons[0] if reasons else ""


def mail_to(smtp: SmtpServer, recipient: str, count: int) -> list[EmailMessage]:
    """Wait until ``count`` messages reached ``recipient``; return them."""
    return wait_for(lambda: len(smtp.mailbox.to(recipient)) >= count and smtp.mailbox.to(recipient))


def token_in(message: EmailMessage, action: str) -> str:
    match = re.search(
        rf"https://trade\.broker\.example/#{action}=([A-Za-z0-9_-]+)", body_of(message)
    )
    assert match is not None, body_of(message)
    return match.group(1)


def metric(mesh: RealMesh, sample: str) -> float:
    text = httpx.get(
        f"http://127.0.0.1:{mesh.env['CFD_ACCOUNT_METRICS_PORT']}/metrics", timeout=5
    ).text
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {sample} in the accounts metrics")


def open_position(front: httpx.Client, token: str) -> httpx.Response:
    order = {"symbol": "BTCUSD", "side": "SIDE_BUY", "leverage": 10, "quantity": "0.001"}
    return front.post("/v1/positions", json=order, headers=auth(token))


def test_a_user_verifies_their_email_from_the_message_then_trades(
    mesh: RealMesh, smtp: SmtpServer
) -> None:
    mesh.publish({"BTCUSD": ("60000.00", "60010.00")})
    with (
        httpx.Client(base_url=mesh.edge_url, timeout=10) as edge,
        httpx.Client(base_url=mesh.envoy_url, timeout=10) as envoy,
    ):
        signed_up = edge.post(
            "/v1/auth/signup", json={"email": "ver@example.com", "password": PASSWORD}
        )
        assert signed_up.status_code == 200, signed_up.text
        session = signed_up.json()
        assert session["user"].get("emailVerified", False) is False
        [message] = mail_to(smtp, "ver@example.com", 1)
        assert message["Subject"] == "Confirm your email address"
        assert str(message["Message-ID"]).endswith("@broker.example>")
        token = token_in(message, "verify-email")

        for front in (edge, envoy):
            refused = open_position(front, session["accessToken"])
            assert reason(refused) == (403, "EMAIL_NOT_VERIFIED")
        forged = envoy.post("/v1/auth/verifyEmail", json={"token": token[:-2] + "AA"})
        assert reason(forged) == (400, "EMAIL_TOKEN_INVALID")

        # No access token: the emailed token is the proof, through Envoy as through the edge.
        verified = envoy.post("/v1/auth/verifyEmail", json={"token": token})
        assert verified.status_code == 200, verified.text
        assert verified.json() == {}
        reused = edge.post("/v1/auth/verifyEmail", json={"token": token})
        assert reason(reused) == (400, "EMAIL_TOKEN_USED")
        me = edge.get("/v1/users/me", headers=auth(session["accessToken"])).json()
        assert me["user"]["emailVerified"] is True
        again = edge.post(
            "/v1/users/me:resendVerification", json={}, headers=auth(session["accessToken"])
        )
        assert reason(again) == (400, "EMAIL_ALREADY_VERIFIED")

        # The access token issued before still says unverified; a refreshed one trades.
        refreshed = edge.post("/v1/auth/refresh", json={"refreshToken": session["refreshToken"]})
        token_after = refreshed.json()["accessToken"]
        for front in (edge, envoy):
            opened = open_position(front, token_after)
            assert opened.status_code == 200, opened.text


def test_a_password_reset_from_the_message_revokes_every_session(
    mesh: RealMesh, smtp: SmtpServer
) -> None:
    with (
        httpx.Client(base_url=mesh.edge_url, timeout=10) as edge,
        httpx.Client(base_url=mesh.envoy_url, timeout=10) as envoy,
    ):
        credentials = {"email": "reset@example.com", "password": PASSWORD}
        first = edge.post("/v1/auth/signup", json=credentials).json()
        second = envoy.post("/v1/auth/signin", json=credentials).json()
        mail_to(smtp, "reset@example.com", 1)

        unknown = envoy.post("/v1/auth/requestPasswordReset", json={"email": "nobody@example.com"})
        known = edge.post("/v1/auth/requestPasswordReset", json={"email": "reset@example.com"})
        assert (
            (unknown.status_code, unknown.json()) == (known.status_code, known.json()) == (200, {})
        )
        malformed = envoy.post("/v1/auth/requestPasswordReset", json={"email": "not an email"})
        assert reason(malformed) == (400, "VALIDATION_FAILED")
        message = mail_to(smtp, "reset@example.com", 2)[1]
        assert message["Subject"] == "Reset your password"
        token = token_in(message, "reset-password")

        weak = envoy.post("/v1/auth/resetPassword", json={"token": token, "newPassword": "short"})
        assert reason(weak) == (400, "VALIDATION_FAILED")
        # The refused attempt spent nothing and revoked nothing.
        assert edge.get("/v1/users/me", headers=auth(first["accessToken"])).status_code == 200

        reset = envoy.post(
            "/v1/auth/resetPassword", json={"token": token, "newPassword": NEW_PASSWORD}
        )
        assert reset.status_code == 200, reset.text
        reused = edge.post(
            "/v1/auth/resetPassword", json={"token": token, "newPassword": "another passphrase"}
        )
        assert reason(reused) == (400, "EMAIL_TOKEN_USED")

        for session in (first, second):
            refresh = edge.post("/v1/auth/refresh", json={"refreshToken": session["refreshToken"]})
            assert reason(refresh) == (401, "TOKEN_INVALID")

            def signed_out(access_token: str = session["accessToken"]) -> bool:
                return edge.get("/v1/users/me", headers=auth(access_token)).status_code == 401

            wait_for(signed_out)
        old = envoy.post("/v1/auth/signin", json=credentials)
        assert reason(old) == (401, "INVALID_CREDENTIALS")
        signed_in = envoy.post("/v1/auth/signin", json={**credentials, "password": NEW_PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        assert signed_in.json()["user"]["emailVerified"] is True
        assert len(smtp.mailbox.to("nobody@example.com")) == 0


def test_an_email_change_is_verified_at_the_new_address(
    mesh: RealMesh, smtp: SmtpServer
) -> None:
    with (
        httpx.Client(base_url=mesh.edge_url, timeout=10) as edge,
        httpx.Client(base_url=mesh.envoy_url, timeout=10) as envoy,
    ):
        signed_up = edge.post(
            "/v1/auth/signup", json={"email": "move@example.com", "password": PASSWORD}
        )
        assert signed_up.status_code == 200, signed_up.text
        token = signed_up.json()["accessToken"]
        mail_to(smtp, "move@example.com", 1)
        body = {"password": PASSWORD, "newEmail": "moved@example.com"}
        # Envoy asks for the access token, as for every other /v1/users/me call.
        assert envoy.post("/v1/users/me:changeEmail", json=body).status_code == 401
        wrong = edge.post(
            "/v1/users/me:changeEmail", json={**body, "password": "wrong"}, headers=auth(token)
        )
        assert reason(wrong) == (401, "INVALID_CREDENTIALS")
        moved = envoy.post("/v1/users/me:changeEmail", json=body, headers=auth(token))
        assert moved.status_code == 200, moved.text
        assert moved.json()["user"]["email"] == "moved@example.com"
        assert moved.json()["user"]["emailVerified"] is False
        [notice] = mail_to(smtp, "move@example.com", 2)[1:]
        assert notice["Subject"] == "Your email address was changed"
        [message] = mail_to(smtp, "moved@example.com", 1)
        verified = edge.post(
            "/v1/auth/verifyEmail", json={"token": token_in(message, "verify-email")}
        )
        assert verified.status_code == 200, verified.text
        user = edge.get("/v1/users/me", headers=auth(token)).json()
        assert (user["user"]["email"], user["user"]["emailVerified"]) == ("moved@example.com", True)


def test_a_message_waits_while_smtp_is_down_and_arrives_once(
    mesh: RealMesh, smtp: SmtpServer
) -> None:
    smtp.stop()
    try:
        with httpx.Client(base_url=mesh.edge_url, timeout=10) as edge:
            signed_up = edge.post(
                "/v1/auth/signup", json={"email": "down@example.com", "password": PASSWORD}
            )
            assert signed_up.status_code == 200, signed_up.text
        wait_for(lambda: "email not sent; retrying" in mesh.up.output())
        assert metric(mesh, 'cfd_accounts_outbox_depth{outbox="email"}') >= 1
        assert smtp.mailbox.to("down@example.com") == []
    finally:
        smtp.start()
    [message] = mail_to(smtp, "down@example.com", 1)
    wait_for(lambda: metric(mesh, 'cfd_accounts_outbox_depth{outbox="email"}') == 0)
    # A later message goes out in a later round: had the first been sent again, it would
    # have been by then.
    with httpx.Client(base_url=mesh.edge_url, timeout=10) as edge:
        edge.post("/v1/auth/signup", json={"email": "later@example.com", "password": PASSWORD})
    mail_to(smtp, "later@example.com", 1)
    assert [m["Message-ID"] for m in smtp.mailbox.to("down@example.com")] == [message["Message-ID"]]
