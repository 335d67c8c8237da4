"""Sign-in through external identity providers: OpenID Connect and GitHub's OAuth 2.0.

The authorization code flow with PKCE (S256), ``state`` and, for OpenID Connect, ``nonce``;
the ID token is verified against the provider's JWKS (signature, issuer, audience, expiry,
nonce) with authlib's ID token claims and joserfc. An OpenID provider is found from its
issuer URL by discovery; GitHub, which has no ID tokens, is asked for the user and their
emails with the access token the code buys.

Nothing here knows users or sessions: ``Identity`` is what a provider vouches for.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

_log = logging.getLogger(__name__)

GOOGLE_ISSUER: Final = "https://accounts.google.com"
GITHUB_URL: Final = "https://github.com"
GITHUB_API_URL: Final = "https://api.github.com"
OIDC_SCOPES: Final = ("openid", "email")
GITHUB_SCOPES: Final = ("read:user", "user:email")
HTTP_TIMEOUT_S: Final = 10.0
# Seconds of clock difference tolerated on an ID token's times.
ID_TOKEN_LEEWAY_S: Final = 120
_NAME: Final = re.compile(r"[a-z][a-z0-9_]{0,31}")
_BUILT_IN_NAMES: Final = {"google": "Google", "github": "GitHub"}


class OidcConfigError(ValueError):
    """An identity provider environment variable has an unusable value."""


class ProviderError(Exception):
    """The provider refused the code or the token, or answered something unusable."""


class ProviderUnavailableError(Exception):
    """The provider could not be reached or answered with a server error."""


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in."""

    subject: str
    email: str
    email_verified: bool


@dataclass(frozen=True)
class ProviderConfig:
    """One configured provider: ``kind`` is ``oidc`` (``issuer`` set) or ``github``."""

    name: str
    display_name: str
    kind: str
    client_id: str
    client_secret: str = field(repr=False)
    issuer: str = ""
    github_url: str = GITHUB_URL
    github_api_url: str = GITHUB_API_URL


@dataclass(frozen=True)
class OidcConfig:
    """The configured providers, where they send the browser back, and allowed return URLs."""

    providers: tuple[ProviderConfig, ...] = ()
    redirect_url: str = "http://localhost:8000/"
    return_origins: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, edge_port: int = 8000) -> OidcConfig:
        """Read ``CFD_OIDC_*``: Google, GitHub and the providers named in ``CFD_OIDC_PROVIDERS``.

        A provider is configured by its client id; one without a client id does not exist.
        """
        source = os.environ if env is None else env
        redirect_url = _get(source, "CFD_OIDC_REDIRECT_URL") or f"http://localhost:{edge_port}/"
        if _origin(redirect_url) is None:
            raise OidcConfigError(f"CFD_OIDC_REDIRECT_URL={redirect_url!r} must be an http(s) URL")
        origins = {_origin(redirect_url) or ""}
        for raw in _get(source, "CFD_OIDC_RETURN_ORIGINS").split(","):
            if raw.strip():
                origin = _origin(raw.strip())
                if origin is None or origin != raw.strip().rstrip("/"):
                    raise OidcConfigError(
                        f"CFD_OIDC_RETURN_ORIGINS: {raw.strip()!r} must be an origin "
                        "such as https://trade.example.com"
                    )
                origins.add(origin)
        providers: list[ProviderConfig] = []
        google = _client(source, "google")
        if google is not None:
            issuer = _get(source, "CFD_OIDC_GOOGLE_ISSUER") or GOOGLE_ISSUER
            providers.append(ProviderConfig("google", "Google", "oidc", *google, issuer=issuer))
        github = _client(source, "github")
        if github is not None:
            providers.append(
                ProviderConfig(
                    "github",
                    "GitHub",
                    "github",
                    *github,
                    github_url=(_get(source, "CFD_OIDC_GITHUB_URL") or GITHUB_URL).rstrip("/"),
                    github_api_url=(
                        _get(source, "CFD_OIDC_GITHUB_API_URL") or GITHUB_API_URL
                    ).rstrip("/"),
                )
            )
        for raw_name in _get(source, "CFD_OIDC_PROVIDERS").split(","):
            name = raw_name.strip().lower()
            if not name:
                continue
            if _NAME.fullmatch(name) is None or name in _BUILT_IN_NAMES:
                raise OidcConfigError(
                    f"CFD_OIDC_PROVIDERS: {raw_name.strip()!r} must be a name of letters, digits "
                    "and underscores starting with a letter, other than google and github"
                )
            prefix = f"CFD_OIDC_{name.upper()}"
            issuer = _get(source, f"{prefix}_ISSUER")
            client = _client(source, name)
            if not issuer or client is None:
                raise OidcConfigError(f"{prefix}_ISSUER and {prefix}_CLIENT_ID must be set")
            if _origin(issuer) is None:
                raise OidcConfigError(f"{prefix}_ISSUER={issuer!r} must be an http(s) URL")
            display = _get(source, f"{prefix}_DISPLAY_NAME") or name.capitalize()
            providers.append(ProviderConfig(name, display, "oidc", *client, issuer=issuer))
        return cls(tuple(providers), redirect_url, frozenset(origins))


def _get(env: Mapping[str, str], variable: str) -> str:
    return env.get(variable, "").strip()


def _client(env: Mapping[str, str], name: str) -> tuple[str, str] | None:
    prefix = f"CFD_OIDC_{name.upper()}"
    client_id = _get(env, f"{prefix}_CLIENT_ID")
    if not client_id:
        return None
    secret = _get(env, f"{prefix}_CLIENT_SECRET")
    if not secret:
        raise OidcConfigError(f"{prefix}_CLIENT_SECRET must be set with {prefix}_CLIENT_ID")
    return client_id, secret


def _origin(url: str) -> str | None:
    """Return ``scheme://host[:port]`` of an absolute http(s) URL, or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{host}" + ("" if port is None else f":{port}")


def is_allowed_return_url(url: str, origins: frozenset[str]) -> bool:
    """Return whether sending the browser to ``url`` after sign-in cannot leave the site.

    A path on this site (``/...``, never ``//host`` or ``/\\host``, which browsers read as
    another host) or an absolute URL on one of the allowed origins.
    """
    if any(ord(c) < 0x21 or c == "\\" for c in url):
        return False
    if url.startswith("/"):
        return not url.startswith("//")
    origin = _origin(url)
    return origin is not None and origin in origins and "@" not in urlsplit(url).netloc


@dataclass(frozen=True)
class FlowSecrets:
    """The per-request secrets of one authorization: state, nonce and PKCE verifier."""

    state: str
    nonce: str
    code_verifier: str

    def __repr__(self) -> str:
        return "FlowSecrets(...)"

    @property
    def code_challenge(self) -> str:
        """Return the PKCE S256 challenge of the verifier."""
        challenge: str = create_s256_code_challenge(  # type: ignore[no-untyped-call]
            self.code_verifier
        )
        return challenge

    @classmethod
    def new(cls) -> FlowSecrets:
        """Return fresh random secrets (RFC 7636 allows a verifier of 43 to 128 characters)."""
        return cls(generate_token(43), generate_token(43), generate_token(64))


class IdentityProvider(Protocol):
    """One configured provider."""

    config: ProviderConfig

    async def authorization_url(self, secrets: FlowSecrets, redirect_url: str) -> str:
        """Return the URL that asks the user to sign in and consent."""
        ...

    async def identity(self, code: str, secrets: FlowSecrets, redirect_url: str) -> Identity:
        """Exchange the code and return who signed in; raise ProviderError or ...Unavailable."""
        ...


async def _request(
    client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """Send a request; a transport failure or a 5xx is ProviderUnavailableError."""
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        host = urlsplit(url).netloc
        raise ProviderUnavailableError(f"{type(exc).__name__} from {host}") from None
    if response.status_code >= 500:
        raise ProviderUnavailableError(f"{response.status_code} from {urlsplit(url).netloc}")
    return response


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise ProviderError(f"the {what} answer is not JSON") from None
    if not isinstance(body, dict):
        raise ProviderError(f"the {what} answer is not a JSON object")
    return body


def _token_request(
    config: ProviderConfig, code: str, secrets: FlowSecrets, redirect_url: str, method: str
) -> tuple[str, dict[str, str]]:
    """Return the URL-encoded token request body and headers, client authenticated."""
    body = prepare_token_request(
        "authorization_code",
        redirect_uri=redirect_url,
        code=code,
        code_verifier=secrets.code_verifier,
    )
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    auth = ClientAuth(config.client_id, config.client_secret, method)
    _, headers, body = auth.prepare("POST", "", headers, body)  # type: ignore[no-untyped-call]
    return str(body), dict(headers)


def _grant_url(
    endpoint: str,
    config: ProviderConfig,
    secrets: FlowSecrets,
    redirect_url: str,
    scopes: tuple[str, ...],
    **extra: str,
) -> str:
    """Return the authorization request URL of the code flow with PKCE (S256) and state."""
    url: str = prepare_grant_uri(
        endpoint,
        config.client_id,
        "code",
        redirect_uri=redirect_url,
        scope=list(scopes),
        state=secrets.state,
        code_challenge=secrets.code_challenge,
        code_challenge_method="S256",
        **extra,
    )
    return url


def _access_token(body: dict[str, Any], status_code: int) -> str:
    if "error" in body or status_code != 200:
        raise ProviderError(f"the provider refused the code: {str(body.get('error'))[:64]}")
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise ProviderError("the token answer has no access_token")
    return token


class OidcProvider:
    """An OpenID Connect provider found by discovery from its issuer URL."""

    def __init__(self, config: ProviderConfig, client: httpx.AsyncClient) -> None:
        self.config = config
        self._client = client
        self._metadata: dict[str, Any] | None = None
        self._jwks: dict[str, Any] | None = None

    async def _discover(self) -> dict[str, Any]:
        if self._metadata is None:
            url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
            response = await _request(self._client, "GET", url)
            if response.status_code != 200:
                raise ProviderUnavailableError(f"discovery answered {response.status_code}")
            metadata = _json_object(response, "discovery")
            if metadata.get("issuer") != self.config.issuer:
                # OpenID Connect Discovery 4.3: the document must name the issuer asked for.
                raise ProviderError("the discovery document names another issuer")
            for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(metadata.get(key), str):
                    raise ProviderError(f"the discovery document has no {key}")
            self._metadata = metadata
        return self._metadata

    async def _key_set(self, refresh: bool) -> KeySet:
        if self._jwks is None or refresh:
            metadata = await self._discover()
            response = await _request(self._client, "GET", metadata["jwks_uri"])
            self._jwks = _json_object(response, "JWKS")
        try:
            return KeySet.import_key_set(self._jwks)  # type: ignore[arg-type]
        except (JoseError, ValueError, KeyError, TypeError):
            raise ProviderError("the provider's JWKS is unusable") from None

    async def authorization_url(self, secrets: FlowSecrets, redirect_url: str) -> str:
        """Return the authorization endpoint URL with PKCE, state and nonce."""
        metadata = await self._discover()
        return _grant_url(
            metadata["authorization_endpoint"],
            self.config,
            secrets,
            redirect_url,
            OIDC_SCOPES,
            nonce=secrets.nonce,
        )

    async def identity(self, code: str, secrets: FlowSecrets, redirect_url: str) -> Identity:
        """Exchange the code, verify the ID token and return its subject and email."""
        metadata = await self._discover()
        supported = metadata.get("token_endpoint_auth_methods_supported") or [
            "client_secret_basic"
        ]
        method = "client_secret_basic" if "client_secret_basic" in supported else (
            "client_secret_post"
        )
        body, headers = _token_request(self.config, code, secrets, redirect_url, method)
        response = await _request(
            self._client, "POST", metadata["token_endpoint"], content=body, headers=headers
        )
        tokens = _json_object(response, "token")
        access_token = _access_token(tokens, response.status_code)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise ProviderError("the token answer has no id_token")
        claims = await self._verified_claims(id_token, access_token, secrets.nonce)
        email, verified = claims.get("email"), claims.get("email_verified")
        if not isinstance(email, str) and isinstance(metadata.get("userinfo_endpoint"), str):
            # Providers may keep the scope's claims for the userinfo endpoint (OIDC Core 5.4).
            info = _json_object(
                await _request(
                    self._client,
                    "GET",
                    metadata["userinfo_endpoint"],
                    headers={"Authorization": f"Bearer {access_token}"},
                ),
                "userinfo",
            )
            if info.get("sub") != claims["sub"]:
                raise ProviderError("the userinfo answer is about another subject")
            email, verified = info.get("email"), info.get("email_verified")
        return Identity(
            subject=str(claims["sub"]),
            email=email if isinstance(email, str) else "",
            email_verified=verified is True,
        )

    def _issuers(self) -> list[str]:
        # Google also signs ID tokens with its issuer written without the scheme.
        if self.config.issuer == GOOGLE_ISSUER:
            return [GOOGLE_ISSUER, GOOGLE_ISSUER.removeprefix("https://")]
        return [self.config.issuer]

    async def _verified_claims(
        self, id_token: str, access_token: str, nonce: str
    ) -> Mapping[str, Any]:
        metadata = await self._discover()
        algorithms = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        registry = JWSRegistry(algorithms=algorithms, strict_check_header=False)
        try:
            try:
                token = jwt.decode(id_token, await self._key_set(False), registry=registry)
            except InvalidKeyIdError:
                # The provider rotated its keys since the JWKS was fetched.
                token = jwt.decode(id_token, await self._key_set(True), registry=registry)
            claims = CodeIDToken(
                token.claims,
                token.header,
                {
                    "iss": {"essential": True, "values": self._issuers()},
                    "aud": {"essential": True, "value": self.config.client_id},
                    "nonce": {"essential": True},
                },
                {"nonce": nonce, "client_id": self.config.client_id, "access_token": access_token},
            )
            claims.validate(leeway=ID_TOKEN_LEEWAY_S)
        except (JoseError, ValueError) as exc:
            raise ProviderError(f"the ID token is not valid: {type(exc).__name__}") from None
        result: Mapping[str, Any] = claims
        return result


class GitHubProvider:
    """GitHub's OAuth 2.0 web flow and its REST API for the user and their emails."""

    def __init__(self, config: ProviderConfig, client: httpx.AsyncClient) -> None:
        self.config = config
        self._client = client

    async def authorization_url(self, secrets: FlowSecrets, redirect_url: str) -> str:
        """Return GitHub's authorize URL with PKCE and state."""
        return _grant_url(
            f"{self.config.github_url}/login/oauth/authorize",
            self.config,
            secrets,
            redirect_url,
            GITHUB_SCOPES,
        )

    async def identity(self, code: str, secrets: FlowSecrets, redirect_url: str) -> Identity:
        """Exchange the code, then read the user's id and primary email."""
        body, headers = _token_request(
            self.config, code, secrets, redirect_url, "client_secret_post"
        )
        response = await _request(
            self._client,
            "POST",
            f"{self.config.github_url}/login/oauth/access_token",
            content=body,
            headers=headers,
        )
        access_token = _access_token(_json_object(response, "token"), response.status_code)
        api_headers = {
            "Authorization": f"Bearer {access_token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        user_response = await _request(
            self._client, "GET", f"{self.config.github_api_url}/user", headers=api_headers
        )
        user = _json_object(user_response, "user")
        user_id = user.get("id")
        if user_response.status_code != 200 or not isinstance(user_id, int):
            raise ProviderError("GitHub did not return the user")
        emails_response = await _request(
            self._client, "GET", f"{self.config.github_api_url}/user/emails", headers=api_headers
        )
        try:
            emails = emails_response.json() if emails_response.status_code == 200 else None
        except ValueError:
            emails = None
        if not isinstance(emails, list):
            raise ProviderError("GitHub did not return the user's emails")
        primary = next(
            (e for e in emails if isinstance(e, dict) and e.get("primary") is True), None
        )
        email = primary.get("email") if primary is not None else None
        return Identity(
            subject=str(user_id),
            email=email if isinstance(email, str) else "",
            email_verified=primary is not None and primary.get("verified") is True,
        )


def create_providers(
    config: OidcConfig, client: httpx.AsyncClient
) -> dict[str, IdentityProvider]:
    """Return a client for each configured provider, by name."""
    providers: dict[str, IdentityProvider] = {}
    for provider in config.providers:
        providers[provider.name] = (
            GitHubProvider(provider, client)
            if provider.kind == "github"
            else OidcProvider(provider, client)
        )
    return providers


def http_client() -> httpx.AsyncClient:
    """Return the HTTP client the providers share (no redirects: each answer is final)."""
    return httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, follow_redirects=False)
