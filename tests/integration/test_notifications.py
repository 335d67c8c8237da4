"""Trading notifications with the real engine: a fired stop loss is emailed once, even when
the accounts service restarts, and each kind can be switched off over REST."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage

import httpx
import pytest

from integration.test_edge_support import PASSWORD, LiveMesh, live_mesh
from smtp_support import SmtpServer, body_of, smtp_server
from support import ServiceProcess, wait_for


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpServer) -> Iterator[LiveMesh]:
    with live_mesh(
        tmp_path_factory.mktemp("notifications"),
        CFD_SMTP_HOST="127.0.0.1",
        CFD_SMTP_PORT=str(smtp.port),
        CFD_SMTP_SECURITY="none",
    ) as running:
        yield running


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def mail_about(smtp: SmtpServer, recipient: str, subject: str, count: int) -> list[EmailMessage]:
    def arrived() -> list[EmailMessage] | None:
        found = [m for m in smtp.mailbox.to(recipient) if m["Subject"] == subject]
        return found if len(found) >= count else None

    return wait_for(arrived, timeout=30)


def restart_accounts(mesh: LiveMesh) -> None:
    mesh.processes["accounts"].stop()
    accounts = ServiceProcess(["accounts"], mesh.env, mesh.data_dir / "accounts-again.log")
    mesh.processes["accounts"] = accounts
    accounts.wait_grpc_ready(int(mesh.env["CFD_ACCOUNT_PORT"]), timeout=60)


def test_a_fired_stop_loss_is_emailed_once_across_a_restart(
    mesh: LiveMesh, smtp: SmtpServer
) -> None:
    email = "trader@example.com"
    with httpx.Client(base_url=mesh.url, timeout=10) as edge:
        session = edge.post("/v1/auth/signup", json={"email": email, "password": PASSWORD}).json()
        token = session["accessToken"]
        settings = edge.get("/v1/users/me/notificationSettings", headers=auth(token)).json()
        assert {s["kind"]: s["enabled"] for s in settings["settings"]} == {
            "NOTIFICATION_KIND_LIQUIDATION": True,
            "NOTIFICATION_KIND_TAKE_PROFIT": True,
            "NOTIFICATION_KIND_STOP_LOSS": True,
            "NOTIFICATION_KIND_TRAILING_STOP": True,
            "NOTIFICATION_KIND_ORDER_FILLED": True,
            "NOTIFICATION_KIND_ORDER_REJECTED": True,
            "NOTIFICATION_KIND_MARGIN_CALL": True,
        }
        off = edge.patch(
            "/v1/users/me/notificationSettings",
            json={"settings": [{"kind": "NOTIFICATION_KIND_ORDER_FILLED", "enabled": False}]},
            headers=auth(token),
        )
        assert off.status_code == 200, off.text
        filled_off = {"kind": "NOTIFICATION_KIND_ORDER_FILLED", "enabled": False}
        assert filled_off in off.json()["settings"]
        bad = edge.patch(
            "/v1/users/me/notificationSettings",
            json={"settings": [{"kind": "NOTIFICATION_KIND_UNSPECIFIED", "enabled": True}]},
            headers=auth(token),
        )
        assert bad.status_code == 400

        mesh.publish_and_wait("BTCUSD", "60000.00", "60010.00", token)
        order = {"symbol": "BTCUSD", "side": "SIDE_BUY", "leverage": 10, "quantity": "0.01",
                 "stopLoss": "59000.00"}  # fmt: skip
        opened = edge.post("/v1/positions", json=order, headers=auth(token))
        assert opened.status_code == 200, opened.text
        mesh.publish(("BTCUSD", "58990.00", "59000.00"))
        [stop] = mail_about(smtp, email, "BTCUSD buy position was closed by its stop loss", 1)
        assert "at 58990.00" in body_of(stop)

        restart_accounts(mesh)

        # A later event is emailed after the restart; had the stop loss been emailed again,
        # it would have been by then (the stream resumes from before both).
        mesh.publish_and_wait("BTCUSD", "60000.00", "60010.00", token)
        order = {"symbol": "BTCUSD", "side": "SIDE_BUY", "leverage": 10, "quantity": "0.01",
                 "takeProfit": "61000.00"}  # fmt: skip
        opened = edge.post("/v1/positions", json=order, headers=auth(token))
        assert opened.status_code == 200, opened.text
        mesh.publish(("BTCUSD", "61000.00", "61010.00"))
        mail_about(smtp, email, "BTCUSD buy position was closed by its take profit", 1)
    subjects = [m["Subject"] for m in smtp.mailbox.to(email)]
    assert subjects.count("BTCUSD buy position was closed by its stop loss") == 1
    assert subjects.count("BTCUSD buy position was closed by its take profit") == 1
