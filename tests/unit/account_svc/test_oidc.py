"""Tests for the identity provider settings and the return URL check."""

from __future__ import annotations

import pytest

from account_svc.oidc import (
    GITHUB_API_URL,
    GOOGLE_ISSUER,
    FlowSecrets,
    OidcConfig,
    OidcConfigError,
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
