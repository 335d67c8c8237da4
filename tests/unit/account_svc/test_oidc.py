"""Tests for the identity provider settings and the return URL check."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from account_svc.oidc import (
    GITHUB_API_URL,
    GOOGLE_ISSUER,
    FlowSecrets,
    Identity,
    OidcConfig,
    OidcConfigError,
    OidcProvider,
    ProviderConfig,
    ProviderError,
    is_allowed_return_url,
)


def test_no_client_id_means_no_provider() -> None:
    config = OidcConfig.from_env({}, edge_port=8123)

    assert config.providers == ()
    assert config.redirect_url == "http://localhost:8123/"
    assert config.return_origins == frozenset({"http://localhost:8123"})


def test_google_github_and_a_generic_provider_from_the_environment() -> None:
    config = OidcConfig.from_env(
        {
            "CFD_OIDC_GOOGLE_CLIENT_ID": "google-id",
            "CFD_OIDC_GOOGLE_CLIENT_SECRET": "google-secret",
            "CFD_OIDC_GITHUB_CLIENT_ID": "github-id",
            "CFD_OIDC_GITHUB_CLIENT_SECRET": "github-secret",
            "CFD_OIDC_PROVIDERS": " Keycloak ",
            "CFD_OIDC_KEYCLOAK_ISSUER": "https://sso.example.com/realms/cfd",
            "CFD_OIDC_KEYCLOAK_CLIENT_ID": "cfd",
            "CFD_OIDC_KEYCLOAK_CLIENT_SECRET": "kc-secret",
            "CFD_OIDC_REDIRECT_URL": "https://trade.example.com/",
            "CFD_OIDC_RETURN_ORIGINS": "https://app.example.com, http://127.0.0.1:5173",
        }
    )

    google, github, keycloak = config.providers
    assert (google.name, google.kind, google.issuer) == ("google", "oidc", GOOGLE_ISSUER)
    assert (github.kind, github.github_api_url) == ("github", GITHUB_API_URL)
    assert (keycloak.name, keycloak.display_name, keycloak.issuer) == (
        "keycloak",
        "Keycloak",
        "https://sso.example.com/realms/cfd",
    )
    assert config.return_origins == {
        "https://trade.example.com",
        "https://app.example.com",
        "http://127.0.0.1:5173",
    }
    # Secrets stay out of reprs, hence out of logs.
    assert "google-secret" not in repr(config)


@pytest.mark.parametrize(
    "env",
    [
        {"CFD_OIDC_GOOGLE_CLIENT_ID": "id"},
        {"CFD_OIDC_PROVIDERS": "okta"},
        {"CFD_OIDC_PROVIDERS": "google"},
        {"CFD_OIDC_PROVIDERS": "bad name"},
        {
            "CFD_OIDC_PROVIDERS": "okta",
            "CFD_OIDC_OKTA_ISSUER": "ftp://okta.example.com",
            "CFD_OIDC_OKTA_CLIENT_ID": "id",
            "CFD_OIDC_OKTA_CLIENT_SECRET": "secret",
        },
        {"CFD_OIDC_REDIRECT_URL": "not a url"},
        {"CFD_OIDC_RETURN_ORIGINS": "https://app.example.com/path"},
    ],
)
def test_unusable_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(OidcConfigError):
        OidcConfig.from_env(env)


ORIGINS = frozenset({"https://trade.example.com", "http://localhost:8000"})


@pytest.mark.parametrize(
    "url",
    ["/", "/#/security", "/?tab=positions", "https://trade.example.com/x", "http://localhost:8000/"],
)
def test_paths_and_allowed_origins_are_return_urls(url: str) -> None:
    assert is_allowed_return_url(url, ORIGINS)


@pytest.mark.parametrize(
    "url",
    [
        "//evil.example/",
        "/\\evil.example",
        "https://evil.example/",
        "https://trade.example.com.evil.example/",
        "https://trade.example.com@evil.example/",
        "https://user@trade.example.com/",
        "http://trade.example.com/",
        "https://trade.example.com:444/",
        "javascript:alert(1)",
        "/ /evil",
        "/\t/evil.example",
        "relative/path",
        "https://trade.example.com:notaport/",
    ],
)
def test_other_hosts_and_tricks_are_not_return_urls(url: str) -> None:
    assert not is_allowed_return_url(url, ORIGINS)


def test_each_flow_has_fresh_secrets_and_an_s256_challenge() -> None:
    first, second = FlowSecrets.new(), FlowSecrets.new()

    assert len({first.state, first.nonce, second.state, second.nonce}) == 4
    assert 43 <= len(first.code_verifier) <= 128
    # RFC 7636 appendix B's example verifier and challenge.
    example = FlowSecrets("s", "n", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
    assert example.code_challenge == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert "dBjft" not in repr(example)


ISSUER = "https://id.example.com"
REDIRECT = "https://trade.example.com/"


class FakeOpenIdProvider:
    """Discovery, JWKS and token endpoints answering from fields a test sets."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256"})
        self.published = [self.key]
        self.claims: dict[str, object] = {}
        self.jwks_fetches = 0
        self.token_forms: list[dict[str, list[str]]] = []

    def id_token(self) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": "cfd", "sub": "s-1", "iat": now, "exp": now + 300}
        header = {"alg": "RS256", "kid": self.key.kid}
        return jwt.encode(header, {**body, **self.claims}, self.key)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "authorization_endpoint": f"{ISSUER}/auth",
                    "token_endpoint": f"{ISSUER}/token",
                    "jwks_uri": f"{ISSUER}/jwks",
                    "id_token_signing_alg_values_supported": ["RS256"],
                },
            )
        if path == "/jwks":
            self.jwks_fetches += 1
            keys = [key.as_dict(private=False) for key in self.published]
            return httpx.Response(200, json={"keys": keys})
        if path == "/token":
            self.token_forms.append(parse_qs(request.content.decode()))
            return httpx.Response(200, json={"access_token": "at", "id_token": self.id_token()})
        return httpx.Response(404)


@pytest.fixture
async def openid() -> AsyncIterator[tuple[FakeOpenIdProvider, OidcProvider]]:
    fake = FakeOpenIdProvider()
    client = httpx.AsyncClient(transport=httpx.MockTransport(fake.handle))
    config = ProviderConfig("sso", "SSO", "oidc", "cfd", "client-secret", issuer=ISSUER)
    yield fake, OidcProvider(config, client)
    await client.aclose()


async def test_a_valid_id_token_gives_the_identity(
    openid: tuple[FakeOpenIdProvider, OidcProvider],
) -> None:
    fake, provider = openid
    secrets = FlowSecrets.new()
    url = await provider.authorization_url(secrets, REDIRECT)
    query = parse_qs(urlsplit(url).query)
    assert query["nonce"] == [secrets.nonce] and query["state"] == [secrets.state]
    assert query["code_challenge"] == [secrets.code_challenge]
    fake.claims = {"nonce": secrets.nonce, "email": "a@example.com", "email_verified": True}

    identity = await provider.identity("the-code", secrets, REDIRECT)

    assert identity == Identity("s-1", "a@example.com", True)
    (form,) = fake.token_forms
    assert form["code_verifier"] == [secrets.code_verifier]
    assert form["redirect_uri"] == [REDIRECT]


@pytest.mark.parametrize(
    "claims",
    [
        {"nonce": "another-nonce"},
        {"nonce": None},
        {"iss": "https://elsewhere.example.com"},
        {"aud": "another-client"},
        {"exp": 1_000_000_000},
    ],
)
async def test_an_id_token_that_does_not_verify_is_refused(
    openid: tuple[FakeOpenIdProvider, OidcProvider], claims: dict[str, object]
) -> None:
    fake, provider = openid
    secrets = FlowSecrets.new()
    fake.claims = {"nonce": secrets.nonce, **claims}
    if claims.get("nonce", "") is None:
        del fake.claims["nonce"]

    with pytest.raises(ProviderError):
        await provider.identity("the-code", secrets, REDIRECT)


async def test_a_token_signed_by_an_unpublished_key_is_refused_after_one_refetch(
    openid: tuple[FakeOpenIdProvider, OidcProvider],
) -> None:
    fake, provider = openid
    secrets = FlowSecrets.new()
    fake.claims = {"nonce": secrets.nonce}
    await provider.identity("the-code", secrets, REDIRECT)
    assert fake.jwks_fetches == 1
    # The provider rotates its key: the new kid makes the service fetch the JWKS again.
    rotated = RSAKey.generate_key(2048, parameters={"kid": "k2", "alg": "RS256"})
    fake.published = [rotated]
    fake.key = rotated
    assert (await provider.identity("the-code", secrets, REDIRECT)).subject == "s-1"
    assert fake.jwks_fetches == 2
    # A key nobody published, even under a published kid, does not verify.
    forger = RSAKey.generate_key(2048, parameters={"kid": "k2", "alg": "RS256"})
    fake.key = forger
    with pytest.raises(ProviderError):
        await provider.identity("the-code", secrets, REDIRECT)


async def test_discovery_must_name_the_configured_issuer(
    openid: tuple[FakeOpenIdProvider, OidcProvider],
) -> None:
    _, provider = openid
    provider.config = ProviderConfig("sso", "SSO", "oidc", "cfd", "s", issuer=f"{ISSUER}/other")

    with pytest.raises(ProviderError):
        await provider.authorization_url(FlowSecrets.new(), REDIRECT)
