"""Sign-in through identity providers over gRPC, REST and Envoy, against real local providers.

The OpenID provider is the npm package oidc-provider (`oidc_support.local_openid_provider`);
GitHub is a local stand-in speaking its documented endpoints. Every flow goes through the
provider's own pages as a browser would, and no test reaches beyond loopback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx
import pyotp
import pytest

from cfd.v1 import account_pb2
from envoy_support import running_mesh
from integration.test_accounts_service import (
    PASSWORD,
    Mesh,
    bearer,
    fails_with,
    start_mesh,
    users_db,  # noqa: F401 (a fixture)
)
from mesh.errors import error_info_of, reason_of
from oidc_support import (
    GitHubStandIn,
    GitHubUser,
    LocalProvider,
    authorize,
    github_authorize,
    local_openid_provider,
)
from support import free_port, serving

# Providers send the browser here; the tests read the code and state off the redirect.
REDIRECT_URL = "http://web.example:8000/"
ACCOUNTS = {
    "alice": {"email": "alice@example.com", "email_verified": True},
    "bob": {"email": "bob@example.com", "email_verified": True},
    "bob-unverified": {"email": "bob@example.com", "email_verified": False},
    "dave": {"email": "dave@example.com", "email_verified": True},
    "fay": {"email": "fay@example.com", "email_verified": True},
}


@dataclass(frozen=True)
class Providers:
    """The local OpenID provider and the GitHub stand-in, with the environment naming them."""

    openid: LocalProvider
    github: GitHubStandIn
    env: dict[str, str]


@pytest.fixture(scope="module")
def providers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Providers]:
    github = GitHubStandIn()
    work = tmp_path_factory.mktemp("providers")
    with (
        local_openid_provider(work, REDIRECT_URL, ACCOUNTS) as openid,
        serving(github.app()) as github_url,
    ):
        yield Providers(
            openid,
            github,
            {
                "CFD_OIDC_REDIRECT_URL": REDIRECT_URL,
                "CFD_OIDC_RETURN_ORIGINS": "https://trade.example.com",
                "CFD_OIDC_PROVIDERS": "local,down",
                # A provider whose issuer does not answer.
                "CFD_OIDC_DOWN_ISSUER": f"http://127.0.0.1:{free_port()}",
                "CFD_OIDC_DOWN_CLIENT_ID": "cfd",
                "CFD_OIDC_DOWN_CLIENT_SECRET": "down-secret",
                "CFD_OIDC_LOCAL_ISSUER": openid.issuer,
                "CFD_OIDC_LOCAL_CLIENT_ID": openid.client_id,
                "CFD_OIDC_LOCAL_CLIENT_SECRET": openid.client_secret,
                "CFD_OIDC_LOCAL_DISPLAY_NAME": "Local OpenID",
                # Google is an OpenID provider known by its issuer; here the local one.
                "CFD_OIDC_GOOGLE_ISSUER": openid.issuer,
                "CFD_OIDC_GOOGLE_CLIENT_ID": openid.client_id,
                "CFD_OIDC_GOOGLE_CLIENT_SECRET": openid.client_secret,
                "CFD_OIDC_GITHUB_CLIENT_ID": github.client_id,
                "CFD_OIDC_GITHUB_CLIENT_SECRET": github.client_secret,
                "CFD_OIDC_GITHUB_URL": github_url,
                "CFD_OIDC_GITHUB_API_URL": github_url,
            },
        )


@asynccontextmanager
async def accounts(
    tmp_path: Path, providers: Providers, database: dict[str, str]
) -> AsyncIterator[Mesh]:
    async with start_mesh(tmp_path, **database, **providers.env) as mesh:
        yield mesh


async def sign_in_as(
    mesh: Mesh, account: str, return_url: str = "", provider: str = "local"
) -> account_pb2.CompleteProviderSigninResponse:
    started = await mesh.stub.StartProviderSignin(
        account_pb2.StartProviderSigninRequest(provider=provider, return_url=return_url)
    )
    code, state = await asyncio.to_thread(
        authorize, started.authorization_url, account, REDIRECT_URL
    )
    return await mesh.stub.CompleteProviderSignin(
        account_pb2.CompleteProviderSigninRequest(code=code, state=state)
    )


def assert_refused(error: grpc.aio.AioRpcError, code: grpc.StatusCode, reason: str) -> None:
    assert (error.code(), reason_of(error)) == (code, reason), error.details()


async def test_first_sign_in_creates_the_user_and_the_next_finds_them(
    tmp_path: Path,
    providers: Providers,
    users_db: dict[str, str],  # noqa: F811
) -> None:
    # At DEBUG, so that the HTTP client's own lines are searched for secrets too.
    async with accounts(tmp_path, providers, {**users_db, "CFD_LOG_LEVEL": "DEBUG"}) as mesh:
        listed = await mesh.stub.ListIdentityProviders(
            account_pb2.ListIdentityProvidersRequest()
        )
        assert [(p.name, p.display_name) for p in listed.providers] == [
            ("google", "Google"),
            ("github", "GitHub"),
            ("local", "Local OpenID"),
            ("down", "Down"),
        ]
        started = await mesh.stub.StartProviderSignin(
            account_pb2.StartProviderSigninRequest(provider="local", return_url="/#/security")
        )
        query = parse_qs(urlsplit(started.authorization_url).query)
        assert started.authorization_url.startswith(providers.openid.issuer)
        assert query["code_challenge_method"] == ["S256"]
        assert {"state", "nonce", "code_challenge"} <= query.keys()
        assert query["redirect_uri"] == [REDIRECT_URL]

        code, state = await asyncio.to_thread(
            authorize, started.authorization_url, "alice", REDIRECT_URL
        )
        first = await mesh.stub.CompleteProviderSignin(
            account_pb2.CompleteProviderSigninRequest(code=code, state=state)
        )
        assert first.new_user
        assert first.user.email == "alice@example.com"
        assert first.return_url == "/#/security"
        # The trading account is opened as for a sign-up.
        assert mesh.engine.accounts[first.user.id] == "5000"
        me = await mesh.stub.GetUser(
            account_pb2.GetUserRequest(), metadata=bearer(first.access_token)
        )
        assert me.user.id == first.user.id
        refreshed = await mesh.stub.RefreshToken(
            account_pb2.RefreshTokenRequest(refresh_token=first.refresh_token)
        )
        assert refreshed.user.id == first.user.id

        # The same code and state again: the state was spent.
        replayed = await fails_with(
            mesh.stub.CompleteProviderSignin(
                account_pb2.CompleteProviderSigninRequest(code=code, state=state)
            )
        )
        assert_refused(replayed, grpc.StatusCode.INVALID_ARGUMENT, "OIDC_STATE_INVALID")

        second = await sign_in_as(mesh, "alice")
        assert (second.new_user, second.user.id, second.return_url) == (
            False,
            first.user.id,
            "/",
        )
        identities = await mesh.stub.ListIdentities(
            account_pb2.ListIdentitiesRequest(), metadata=bearer(second.access_token)
        )
        assert [(i.provider, i.email) for i in identities.identities] == [
            ("local", "alice@example.com")
        ]
        # Google vouches for the same verified email: it joins alice's identities.
        with_google = await sign_in_as(mesh, "alice", provider="google")
        assert (with_google.new_user, with_google.user.id) == (False, first.user.id)
        identities = await mesh.stub.ListIdentities(
            account_pb2.ListIdentitiesRequest(), metadata=bearer(second.access_token)
        )
        assert [i.provider for i in identities.identities] == ["google", "local"]
        await mesh.stub.UnlinkIdentity(
            account_pb2.UnlinkIdentityRequest(provider="google"),
            metadata=bearer(second.access_token),
        )
        # A user without a password cannot sign in with one, nor drop their only way in.
        no_password = await fails_with(
            mesh.stub.Signin(
                account_pb2.SigninRequest(email="alice@example.com", password=PASSWORD)
            )
        )
        assert_refused(no_password, grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")
        last = await fails_with(
            mesh.stub.UnlinkIdentity(
                account_pb2.UnlinkIdentityRequest(provider="local"),
                metadata=bearer(second.access_token),
            )
        )
        assert_refused(last, grpc.StatusCode.FAILED_PRECONDITION, "LAST_SIGNIN_METHOD")
        logs = mesh.process.output() if mesh.process else ""
        assert "signed in through a provider" in logs
        secrets = (code, state, first.access_token, first.refresh_token, query["nonce"][0])
        for secret in (*secrets, providers.openid.client_secret):
            assert secret not in logs


async def test_forged_and_tampered_flows_are_refused_and_change_nothing(
    tmp_path: Path, providers: Providers
) -> None:
    async with accounts(tmp_path, providers, {}) as mesh:
        forged = await fails_with(
            mesh.stub.CompleteProviderSignin(
                account_pb2.CompleteProviderSigninRequest(code="some-code", state="made-up")
            )
        )
        assert_refused(forged, grpc.StatusCode.INVALID_ARGUMENT, "OIDC_STATE_INVALID")

        # The provider is asked for another nonce than ours: its ID token does not verify.
        started = await mesh.stub.StartProviderSignin(
            account_pb2.StartProviderSigninRequest(provider="local")
        )
        code, state = await asyncio.to_thread(
            authorize, started.authorization_url, "dave", REDIRECT_URL, "a-nonce-of-the-attacker"
        )
        tampered = await fails_with(
            mesh.stub.CompleteProviderSignin(
                account_pb2.CompleteProviderSigninRequest(code=code, state=state)
            )
        )
        assert_refused(tampered, grpc.StatusCode.UNAUTHENTICATED, "OIDC_IDENTITY_INVALID")
        # A code that belongs to another flow's state: the PKCE verifier does not match.
        other = await mesh.stub.StartProviderSignin(
            account_pb2.StartProviderSigninRequest(provider="local")
        )
        stolen_code, _ = await asyncio.to_thread(
            authorize, started.authorization_url, "dave", REDIRECT_URL
        )
        other_state = parse_qs(urlsplit(other.authorization_url).query)["state"][0]
        swapped = await fails_with(
            mesh.stub.CompleteProviderSignin(
                account_pb2.CompleteProviderSigninRequest(code=stolen_code, state=other_state)
            )
        )
        assert_refused(swapped, grpc.StatusCode.UNAUTHENTICATED, "OIDC_IDENTITY_INVALID")
        # None of that created dave.
        assert (await sign_in_as(mesh, "dave")).new_user

        for url in (
            "https://evil.example/",
            "//evil.example/path",
            "/\\evil.example",
            "javascript:alert(1)",
            "https://trade.example.com@evil.example/",
            "http://trade.example.com/",
        ):
            refused = await fails_with(
                mesh.stub.StartProviderSignin(
                    account_pb2.StartProviderSigninRequest(provider="local", return_url=url)
                )
            )
            assert_refused(refused, grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_FAILED")
        allowed = await sign_in_as(mesh, "dave", "https://trade.example.com/#/security")
        assert allowed.return_url == "https://trade.example.com/#/security"
        unknown = await fails_with(
            mesh.stub.StartProviderSignin(account_pb2.StartProviderSigninRequest(provider="okta"))
        )
        assert_refused(unknown, grpc.StatusCode.NOT_FOUND, "PROVIDER_NOT_FOUND")
        down = await fails_with(
            mesh.stub.StartProviderSignin(account_pb2.StartProviderSigninRequest(provider="down"))
        )
        assert_refused(down, grpc.StatusCode.UNAVAILABLE, "SERVICE_UNAVAILABLE")


async def test_an_existing_email_is_linked_only_when_the_provider_verified_it(
    tmp_path: Path, providers: Providers
) -> None:
    async with accounts(tmp_path, providers, {}) as mesh:
        bob = await mesh.stub.Signup(
            account_pb2.SignupRequest(email="bob@example.com", password=PASSWORD)
        )
        unverified = await fails_with(sign_in_as(mesh, "bob-unverified"))
        assert_refused(
            unverified, grpc.StatusCode.FAILED_PRECONDITION, "PROVIDER_EMAIL_NOT_VERIFIED"
        )
        assert "password" in (unverified.details() or "")
        listed = await mesh.stub.ListIdentities(
            account_pb2.ListIdentitiesRequest(), metadata=bearer(bob.access_token)
        )
        assert list(listed.identities) == []

        verified = await sign_in_as(mesh, "bob")
        assert (verified.new_user, verified.user.id) == (False, bob.user.id)
        # Bob keeps his password, so the provider may go.
        await mesh.stub.UnlinkIdentity(
            account_pb2.UnlinkIdentityRequest(provider="local"),
            metadata=bearer(bob.access_token),
        )
        gone = await fails_with(
            mesh.stub.UnlinkIdentity(
                account_pb2.UnlinkIdentityRequest(provider="local"),
                metadata=bearer(bob.access_token),
            )
        )
        assert_refused(gone, grpc.StatusCode.NOT_FOUND, "IDENTITY_NOT_FOUND")

        # With two-factor authentication on, only the user may link, after their code.
        enrolment = await mesh.stub.EnrolTotp(
            account_pb2.EnrolTotpRequest(), metadata=bearer(bob.access_token)
        )
        await mesh.stub.ConfirmTotp(
            account_pb2.ConfirmTotpRequest(totp_code=pyotp.TOTP(enrolment.secret).now()),
            metadata=bearer(bob.access_token),
        )
        guarded = await fails_with(sign_in_as(mesh, "bob"))
        assert_refused(guarded, grpc.StatusCode.FAILED_PRECONDITION, "IDENTITY_LINK_REQUIRED")


async def test_two_factor_users_complete_a_provider_sign_in_with_their_code(
    tmp_path: Path,
    providers: Providers,
    users_db: dict[str, str],  # noqa: F811
) -> None:
    async with accounts(tmp_path, providers, {**users_db, "CFD_LOG_LEVEL": "DEBUG"}) as mesh:
        fay = await sign_in_as(mesh, "fay", "/#/security")
        enrolment = await mesh.stub.EnrolTotp(
            account_pb2.EnrolTotpRequest(), metadata=bearer(fay.access_token)
        )
        totp = pyotp.TOTP(enrolment.secret)
        confirmed = await mesh.stub.ConfirmTotp(
            account_pb2.ConfirmTotpRequest(totp_code=totp.now()),
            metadata=bearer(fay.access_token),
        )
        sessions_before = await mesh.stub.ListSessions(
            account_pb2.ListSessionsRequest(), metadata=bearer(fay.access_token)
        )

        # The callback answers as a password sign-in without a code does, with a ticket.
        started = await mesh.stub.StartProviderSignin(
            account_pb2.StartProviderSigninRequest(provider="local", return_url="/#/history")
        )
        code, state = await asyncio.to_thread(
            authorize, started.authorization_url, "fay", REDIRECT_URL
        )
        challenge = await fails_with(
            mesh.stub.CompleteProviderSignin(
                account_pb2.CompleteProviderSigninRequest(code=code, state=state)
            )
        )
        assert_refused(challenge, grpc.StatusCode.UNAUTHENTICATED, "TOTP_REQUIRED")
        info = error_info_of(challenge)
        assert info is not None
        ticket = info.metadata["signinTicket"]
        assert info.metadata["expireTime"].endswith("Z")
        # The provider's answer cannot be replayed for another ticket or for tokens.
        replayed = await fails_with(
            mesh.stub.CompleteProviderSignin(
                account_pb2.CompleteProviderSigninRequest(code=code, state=state)
            )
        )
        assert_refused(replayed, grpc.StatusCode.INVALID_ARGUMENT, "OIDC_STATE_INVALID")

        verify = mesh.stub.VerifyProviderSignin
        right = totp.at(time.time() + 30)
        wrong = f"{(int(right) + 500_000) % 1_000_000:06d}"
        refused = await fails_with(
            verify(account_pb2.VerifyProviderSigninRequest(signin_ticket=ticket, totp_code=wrong))
        )
        assert_refused(refused, grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")
        forged = await fails_with(
            verify(
                account_pb2.VerifyProviderSigninRequest(
                    signin_ticket=ticket[::-1], totp_code=right
                )
            )
        )
        assert_refused(forged, grpc.StatusCode.INVALID_ARGUMENT, "SIGNIN_TICKET_INVALID")
        sessions = await mesh.stub.ListSessions(
            account_pb2.ListSessionsRequest(), metadata=bearer(fay.access_token)
        )
        assert len(sessions.sessions) == len(sessions_before.sessions)

        signed_in = await verify(
            account_pb2.VerifyProviderSigninRequest(signin_ticket=ticket, totp_code=right)
        )
        assert (signed_in.user.id, signed_in.return_url, signed_in.new_user) == (
            fay.user.id,
            "/#/history",
            False,
        )
        assert signed_in.user.totp_enabled
        me = await mesh.stub.GetUser(
            account_pb2.GetUserRequest(), metadata=bearer(signed_in.access_token)
        )
        assert me.user.id == fay.user.id
        refreshed = await mesh.stub.RefreshToken(
            account_pb2.RefreshTokenRequest(refresh_token=signed_in.refresh_token)
        )
        assert refreshed.user.id == fay.user.id
        reused = await fails_with(
            verify(
                account_pb2.VerifyProviderSigninRequest(
                    signin_ticket=ticket, recovery_code=confirmed.recovery_codes[0]
                )
            )
        )
        assert_refused(reused, grpc.StatusCode.INVALID_ARGUMENT, "SIGNIN_TICKET_INVALID")

        # A recovery code completes another sign-in, once.
        again = await fails_with(sign_in_as(mesh, "fay"))
        second_info = error_info_of(again)
        assert second_info is not None
        second_ticket = second_info.metadata["signinTicket"]
        assert second_ticket != ticket
        recovered = await verify(
            account_pb2.VerifyProviderSigninRequest(
                signin_ticket=second_ticket, recovery_code=confirmed.recovery_codes[0]
            )
        )
        assert recovered.user.id == fay.user.id
        third = error_info_of(await fails_with(sign_in_as(mesh, "fay")))
        assert third is not None
        spent = await fails_with(
            verify(
                account_pb2.VerifyProviderSigninRequest(
                    signin_ticket=third.metadata["signinTicket"],
                    recovery_code=confirmed.recovery_codes[0],
                )
            )
        )
        assert_refused(spent, grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")

        # Linking another provider as the signed-in user needs no second code.
        github = providers.github
        github.signed_in = GitHubUser(
            5151, "fay-gh", [{"email": "fay@example.org", "primary": True, "verified": True}]
        )
        code, state = await github_link_flow(mesh, signed_in.access_token)
        linked = await complete_link(mesh, signed_in.access_token, code, state)
        assert linked.identity.provider == "github"
        with_github = await fails_with(github_sign_in(mesh))
        assert_refused(with_github, grpc.StatusCode.UNAUTHENTICATED, "TOTP_REQUIRED")

        logs = mesh.process.output() if mesh.process else ""
        assert "provider sign-in waits for the second factor" in logs
        for secret in (
            ticket,
            second_ticket,
            right,
            confirmed.recovery_codes[0],
            signed_in.access_token,
            signed_in.refresh_token,
            code,
            state,
        ):
            assert secret not in logs


async def test_wrong_provider_sign_in_codes_are_rate_limited_per_user(
    tmp_path: Path, providers: Providers
) -> None:
    async with accounts(tmp_path, providers, {"CFD_LIMIT_VERIFY_PER_USER": "3/3600"}) as mesh:
        fay = await sign_in_as(mesh, "fay")
        enrolment = await mesh.stub.EnrolTotp(
            account_pb2.EnrolTotpRequest(), metadata=bearer(fay.access_token)
        )
        totp = pyotp.TOTP(enrolment.secret)
        # The confirmation is the first attempt of three.
        await mesh.stub.ConfirmTotp(
            account_pb2.ConfirmTotpRequest(totp_code=totp.now()),
            metadata=bearer(fay.access_token),
        )
        info = error_info_of(await fails_with(sign_in_as(mesh, "fay")))
        assert info is not None
        ticket = info.metadata["signinTicket"]
        right = totp.at(time.time() + 30)
        wrong = f"{(int(right) + 500_000) % 1_000_000:06d}"
        request = account_pb2.VerifyProviderSigninRequest
        for _ in range(2):
            refused = await fails_with(
                mesh.stub.VerifyProviderSignin(request(signin_ticket=ticket, totp_code=wrong))
            )
            assert_refused(refused, grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")
        limited = await fails_with(
            mesh.stub.VerifyProviderSignin(request(signin_ticket=ticket, totp_code=right))
        )
        assert_refused(limited, grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED")
        # Refused calls opened no session: fay's first sign-in is her only one.
        sessions = await mesh.stub.ListSessions(
            account_pb2.ListSessionsRequest(), metadata=bearer(fay.access_token)
        )
        assert len(sessions.sessions) == 1


async def github_link_flow(mesh: Mesh, access_token: str) -> tuple[str, str]:
    """Start linking GitHub for the token's user; return the code and state sent back."""
    started = await mesh.stub.StartIdentityLink(
        account_pb2.StartIdentityLinkRequest(provider="github", return_url="/#/security"),
        metadata=bearer(access_token),
    )
    return await asyncio.to_thread(github_authorize, started.authorization_url, REDIRECT_URL)


async def github_sign_in(mesh: Mesh) -> account_pb2.CompleteProviderSigninResponse:
    started = await mesh.stub.StartProviderSignin(
        account_pb2.StartProviderSigninRequest(provider="github")
    )
    code, state = await asyncio.to_thread(
        github_authorize, started.authorization_url, REDIRECT_URL
    )
    return await mesh.stub.CompleteProviderSignin(
        account_pb2.CompleteProviderSigninRequest(code=code, state=state)
    )


async def complete_link(
    mesh: Mesh, access_token: str, code: str, state: str
) -> account_pb2.CompleteIdentityLinkResponse:
    return await mesh.stub.CompleteIdentityLink(
        account_pb2.CompleteIdentityLinkRequest(code=code, state=state),
        metadata=bearer(access_token),
    )


async def test_link_github_to_a_password_account_then_sign_in_with_it(
    tmp_path: Path, providers: Providers
) -> None:
    github = providers.github
    async with accounts(tmp_path, providers, {}) as mesh:
        carol = await mesh.stub.Signup(
            account_pb2.SignupRequest(email="carol@example.com", password=PASSWORD)
        )
        mallory = await mesh.stub.Signup(
            account_pb2.SignupRequest(email="mallory@example.com", password=PASSWORD)
        )
        anonymous = await fails_with(
            mesh.stub.StartIdentityLink(account_pb2.StartIdentityLinkRequest(provider="github"))
        )
        assert_refused(anonymous, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID")
        github.signed_in = GitHubUser(
            4242,
            "carol-gh",
            [
                {"email": "carol.old@example.org", "primary": False, "verified": True},
                {"email": "carol@example.org", "primary": True, "verified": True},
            ],
        )
        # A link state is neither a sign-in nor anyone else's link, and refusing spends it.
        code, state = await github_link_flow(mesh, carol.access_token)
        as_signin = await fails_with(
            mesh.stub.CompleteProviderSignin(
                account_pb2.CompleteProviderSigninRequest(code=code, state=state)
            )
        )
        assert_refused(as_signin, grpc.StatusCode.INVALID_ARGUMENT, "OIDC_STATE_INVALID")
        code, state = await github_link_flow(mesh, carol.access_token)
        hijack = await fails_with(complete_link(mesh, mallory.access_token, code, state))
        assert_refused(hijack, grpc.StatusCode.INVALID_ARGUMENT, "OIDC_STATE_INVALID")
        code, state = await github_link_flow(mesh, carol.access_token)
        linked = await complete_link(mesh, carol.access_token, code, state)
        assert (linked.identity.provider, linked.identity.email, linked.return_url) == (
            "github",
            "carol@example.org",
            "/#/security",
        )

        # Signing in with GitHub is now signing in as carol.
        signed_in = await github_sign_in(mesh)
        assert (signed_in.new_user, signed_in.user.id) == (False, carol.user.id)

        # The same GitHub user cannot be linked to mallory too.
        code, state = await github_link_flow(mesh, mallory.access_token)
        taken = await fails_with(complete_link(mesh, mallory.access_token, code, state))
        assert_refused(taken, grpc.StatusCode.ALREADY_EXISTS, "IDENTITY_TAKEN")

        # A new GitHub user gets a new account from their primary email.
        github.signed_in = GitHubUser(
            77, "erin", [{"email": "erin@example.net", "primary": True, "verified": True}]
        )
        erin = await github_sign_in(mesh)
        assert (erin.new_user, erin.user.email) == (True, "erin@example.net")


def reason(reply: httpx.Response) -> tuple[int, str]:
    body: dict[str, Any] = reply.json()
    reasons = [d["reason"] for d in body.get("details", []) if "reason" in d]
    return reply.status_code, reasons[0] if reasons else ""


def test_sign_in_over_rest_through_envoy_and_the_edge(
    tmp_path: Path, providers: Providers
) -> None:
    with (
        running_mesh(tmp_path, **providers.env) as mesh,
        httpx.Client(base_url=mesh.envoy_url, timeout=10) as envoy,
        httpx.Client(base_url=mesh.edge_url, timeout=10) as edge,
    ):
        for front in (envoy, edge):
            listed = front.get("/v1/auth/providers")
            assert listed.status_code == 200, listed.text
            names = [p["name"] for p in listed.json()["providers"]]
            assert names == ["google", "github", "local", "down"]
            forged = front.post(
                "/v1/auth/providers:complete", json={"code": "x", "state": "forged"}
            )
            assert reason(forged) == (400, "OIDC_STATE_INVALID")
            open_redirect = front.post(
                "/v1/auth/providers/local:start", json={"returnUrl": "https://evil.example/"}
            )
            assert reason(open_redirect) == (400, "VALIDATION_FAILED")
            started = front.post("/v1/auth/providers/local:start", json={"returnUrl": "/"})
            assert started.status_code == 200, started.text
            code, state = authorize(started.json()["authorizationUrl"], "alice", REDIRECT_URL)
            signed_in = front.post(
                "/v1/auth/providers:complete", json={"code": code, "state": state}
            )
            assert signed_in.status_code == 200, signed_in.text
            token = {"authorization": f"Bearer {signed_in.json()['accessToken']}"}
            assert front.get("/v1/users/me/identities").status_code == 401
            identities = front.get("/v1/users/me/identities", headers=token)
            assert [i["provider"] for i in identities.json()["identities"]] == ["local"]
            assert front.post("/v1/users/me/identities/github:link", json={}).status_code == 401
            link = front.post("/v1/users/me/identities/github:link", json={}, headers=token)
            assert link.status_code == 200, link.text

        # With two-factor authentication on, the callback answers 401 TOTP_REQUIRED with a
        # ticket, and the ticket with a code signs in, through either front, with no token.
        token = {"authorization": f"Bearer {signed_in.json()['accessToken']}"}
        enrolled = edge.post("/v1/users/me/totp:enrol", json={}, headers=token)
        assert enrolled.status_code == 200, enrolled.text
        totp = pyotp.TOTP(enrolled.json()["secret"])
        confirmed = edge.post(
            "/v1/users/me/totp:confirm", json={"totpCode": totp.now()}, headers=token
        )
        assert confirmed.status_code == 200, confirmed.text
        recovery_code = confirmed.json()["recoveryCodes"][0]
        second_factors = {"envoy": {"totpCode": totp.at(time.time() + 30)}}
        second_factors["edge"] = {"recoveryCode": recovery_code}
        for name, front in (("envoy", envoy), ("edge", edge)):
            started = front.post("/v1/auth/providers/local:start", json={"returnUrl": "/#/x"})
            code, state = authorize(started.json()["authorizationUrl"], "alice", REDIRECT_URL)
            challenge = front.post(
                "/v1/auth/providers:complete", json={"code": code, "state": state}
            )
            assert reason(challenge) == (401, "TOTP_REQUIRED"), challenge.text
            (info,) = [d for d in challenge.json()["details"] if "reason" in d]
            ticket = info["metadata"]["signinTicket"]
            forged = front.post(
                "/v1/auth/providers:verify",
                json={"signinTicket": "forged", **second_factors[name]},
            )
            assert reason(forged) == (400, "SIGNIN_TICKET_INVALID")
            wrong_code = f"{(int(totp.at(time.time() + 30)) + 500_000) % 1_000_000:06d}"
            wrong = front.post(
                "/v1/auth/providers:verify", json={"signinTicket": ticket, "totpCode": wrong_code}
            )
            assert reason(wrong) == (401, "INVALID_CREDENTIALS")
            verified = front.post(
                "/v1/auth/providers:verify", json={"signinTicket": ticket, **second_factors[name]}
            )
            assert verified.status_code == 200, verified.text
            body = verified.json()
            assert (body["user"]["email"], body["returnUrl"]) == ("alice@example.com", "/#/x")
            me = front.get(
                "/v1/users/me", headers={"authorization": f"Bearer {body['accessToken']}"}
            )
            assert me.status_code == 200, me.text
            reused = front.post(
                "/v1/auth/providers:verify", json={"signinTicket": ticket, **second_factors[name]}
            )
            assert reason(reused) == (400, "SIGNIN_TICKET_INVALID")
