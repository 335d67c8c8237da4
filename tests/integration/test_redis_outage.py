"""The whole mesh on a Redis that goes down: limits hold, sign-in tells nothing, trading goes on.

Market, engine, accounts and edge run as processes sharing a redis-server of the test's
own, which the test stops after a user signed up.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from integration.test_edge_support import PASSWORD, live_mesh, signup
from support import running_redis


def test_sign_in_and_rest_limits_hold_while_redis_is_down(tmp_path: Path) -> None:
    with (
        running_redis(tmp_path) as (url, server),
        live_mesh(
            tmp_path,
            CFD_REDIS_URL=url,
            CFD_RATE_LIMIT_USER="30",
            CFD_LIMIT_SIGNIN_PER_ADDRESS="4/600",
        ) as mesh,
        httpx.Client(base_url=mesh.url, timeout=15) as http,
    ):
        token = signup(http, "owner@example.com")
        auth = {"authorization": f"Bearer {token}"}
        server.terminate()
        server.wait()

        # Trading with a valid token goes on.
        assert http.get("/v1/account", headers=auth).status_code == 200

        # Right and wrong passwords get the same answer, and the address limit still counts.
        replies = [
            http.post("/v1/auth/signin", json={"email": "owner@example.com", "password": p})
            for p in ("not the password", PASSWORD, "another guess", PASSWORD, PASSWORD)
        ]
        first = replies[0]
        assert first.status_code == 503, first.text
        assert [(r.status_code, r.json()) for r in replies[1:4]] == [
            (first.status_code, first.json())
        ] * 3
        assert replies[4].status_code == 429

        # The per-user REST limit (30 a minute) is enforced by the edge meanwhile.
        statuses = [http.get("/v1/account", headers=auth).status_code for _ in range(40)]
        assert statuses[0] == 200
        assert statuses.count(429) >= 5, statuses
