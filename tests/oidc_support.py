"""Identity providers for the sign-in tests, all on loopback.

`local_openid_provider` runs the npm package oidc-provider (a certified OpenID Provider)
from `tests/oidc/provider.mjs` with one client and static accounts; its login page lets the
test pick the account. `GitHubStandIn` speaks the part of GitHub's documented OAuth web
flow and REST API that sign-in uses. `authorize` plays the browser: it opens an
authorization URL, signs in as an account and returns the `code` and `state` the provider
sends back to the redirect URL.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from support import REPO, free_port

PROVIDER_DIR = REPO / "tests" / "oidc"
CLIENT_ID = "cfd-mesh-test"
CLIENT_SECRET = "test-client-secret-0123456789abcdef"


@dataclass(frozen=True)
class LocalProvider:
    """A running oidc-provider: its issuer URL and the test client's credentials."""

    issuer: str
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET


@contextmanager
def local_openid_provider(
    work_dir: Path, redirect_url: str, accounts: dict[str, dict[str, Any]]
) -> Iterator[LocalProvider]:
    """Run oidc-provider with the test client and these accounts (id → claims)."""
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        raise AssertionError(
            "oidc-provider is not installed: run `make tests/oidc/node_modules/.package-lock.json`"
        )
    config = work_dir / "oidc-provider.json"
    config.write_text(
        json.dumps(
            {
                "port": free_port(),
                "client": {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "redirect_uris": [redirect_url],
                },
                "accounts": accounts,
            }
        )
    )
    log = (work_dir / "oidc-provider.log").open("wb")
    process = subprocess.Popen(
        ["node", str(PROVIDER_DIR / "provider.mjs"), str(config)],
        cwd=PROVIDER_DIR,
        stdout=subprocess.PIPE,
        stderr=log,
    )
    try:
        assert process.stdout is not None
        # The script prints its issuer once it listens; a crash closes stdout instead.
        line = process.stdout.readline()
        if not line:
            raise AssertionError(
                f"oidc-provider exited: {(work_dir / 'oidc-provider.log').read_text()}"
            )
        yield LocalProvider(issuer=json.loads(line)["issuer"])
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        log.close()


def authorize(
    authorization_url: str, account: str, redirect_url: str, nonce: str | None = None
) -> tuple[str, str]:
    """Sign in at the provider as `account`, consent, and return the (code, state) sent back.

    `nonce`, when given, replaces the one in the URL: what a tampered request would carry.
    """
    if nonce is not None:
        parts = urlsplit(authorization_url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()} | {"nonce": nonce}
        authorization_url = parts._replace(query=urlencode(query)).geturl()
    with httpx.Client(timeout=10, follow_redirects=False) as browser:
        response = browser.get(authorization_url)
        for _ in range(10):
            location = response.headers.get("location")
            assert response.is_redirect and location, response.text
            url = str(response.url.join(location))
            if url.startswith(redirect_url):
                sent_back = parse_qs(urlsplit(url).query)
                assert "code" in sent_back, url
                return sent_back["code"][0], sent_back["state"][0]
            if urlsplit(url).path.startswith("/interaction/"):
                page = browser.get(url)
                assert page.status_code == 200, page.text
                response = browser.post(url, data={"account": account})
            else:
                response = browser.get(url)
    raise AssertionError("the provider never sent the browser back")


@dataclass
class GitHubUser:
    """A user of the stand-in: GitHub's numeric id and their emails."""

    id: int
    login: str
    emails: list[dict[str, Any]]


@dataclass
class _Grant:
    user: GitHubUser
    challenge: str
    redirect_url: str


@dataclass
class GitHubStandIn:
    """GitHub's /login/oauth/authorize, /login/oauth/access_token, /user and /user/emails.

    `signed_in` is the user a browser arriving at the authorize page is signed in as.
    """

    signed_in: GitHubUser | None = None
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    _codes: dict[str, _Grant] = field(default_factory=dict)
    _tokens: dict[str, GitHubUser] = field(default_factory=dict)

    def app(self) -> Starlette:
        """Return the ASGI app."""
        return Starlette(
            routes=[
                Route("/login/oauth/authorize", self._authorize),
                Route("/login/oauth/access_token", self._access_token, methods=["POST"]),
                Route("/user", self._user),
                Route("/user/emails", self._emails),
            ]
        )

    async def _authorize(self, request: Request) -> Response:
        query = request.query_params
        if query.get("client_id") != self.client_id or self.signed_in is None:
            return Response("unknown client", status_code=404)
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return Response("this stand-in expects PKCE S256", status_code=400)
        code = secrets.token_hex(10)
        redirect_url = query["redirect_uri"]
        self._codes[code] = _Grant(self.signed_in, query["code_challenge"], redirect_url)
        target = f"{redirect_url}?{urlencode({'code': code, 'state': query['state']})}"
        return RedirectResponse(target, status_code=302)

    async def _access_token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        grant = self._codes.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return JSONResponse({"error": "incorrect_client_credentials"})
        if (
            grant is None
            or grant.challenge != challenge
            or grant.redirect_url != form.get("redirect_uri")
        ):
            # GitHub answers a bad code with 200 and an error field.
            return JSONResponse({"error": "bad_verification_code"})
        token = f"gho_{secrets.token_hex(16)}"
        self._tokens[token] = grant.user
        return JSONResponse({"access_token": token, "token_type": "bearer", "scope": "user"})

    def _bearer(self, request: Request) -> GitHubUser | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return self._tokens.get(token) if scheme.lower() == "bearer" else None

    async def _user(self, request: Request) -> Response:
        user = self._bearer(request)
        if user is None:
            return JSONResponse({"message": "Requires authentication"}, status_code=401)
        return JSONResponse({"id": user.id, "login": user.login, "email": None})

    async def _emails(self, request: Request) -> Response:
        user = self._bearer(request)
        if user is None:
            return JSONResponse({"message": "Requires authentication"}, status_code=401)
        return JSONResponse(user.emails)


def github_authorize(authorization_url: str, redirect_url: str) -> tuple[str, str]:
    """Open the stand-in's authorize URL and return the (code, state) it sends back."""
    response = httpx.get(authorization_url, follow_redirects=False, timeout=10)
    location = response.headers.get("location", "")
    assert response.status_code == 302 and location.startswith(redirect_url), response.text
    sent_back = parse_qs(urlsplit(location).query)
    return sent_back["code"][0], sent_back["state"][0]
