"""Signing in and linking through identity providers: the use cases over ``oidc``.

Each authorization starts with fresh state, nonce and PKCE verifier stored server-side
under the state's hash (``identities``); the callback takes that row (once: a replayed
or forged state finds nothing) before anything is asked of the provider. A state started
by a link is accepted only from the same user's CompleteIdentityLink, and a sign-in state
only by CompleteProviderSignin. Nothing here logs a code, a state, a ticket or a token.

A user with two-factor authentication gets no tokens from the callback: it answers
TOTP_REQUIRED, as a password sign-in without a code does, with a sign-in ticket in the
error's ErrorInfo metadata (``signinTicket``, ``expireTime``). The ticket (256 random bits,
stored hashed, valid ``TICKET_TTL_S`` seconds) stands for the provider's verified answer,
whose code and state cannot be used again; VerifyProviderSignin spends it together with a
TOTP or recovery code, checked and rate-limited exactly as the password sign-in checks
them. A wrong code leaves the ticket as it was, for another try; the ticket is spent only
once the code was accepted (of two completions racing with good codes, one signs in).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from account_svc.accounts import Accounts, SecondFactor, Session
from account_svc.config import RateLimits
from account_svc.identities import (
    MAX_TICKET_LENGTH,
    AuthorizationRequest,
    IdentityStore,
    IdentityTakenError,
    LinkedIdentity,
)
from account_svc.oidc import (
    FlowSecrets,
    Identity,
    IdentityProvider,
    OidcConfig,
    ProviderError,
    ProviderUnavailableError,
    is_allowed_return_url,
)
from account_svc.sessions import Origin
from account_svc.users import EmailTakenError, User
from account_svc.validation import normalize_email
from mesh.errors import ApiError, validation_error

_log = logging.getLogger(__name__)

MAX_CODE_LENGTH = 2048
MAX_STATE_LENGTH = 128
MAX_RETURN_URL_LENGTH = 2048
MAX_PROVIDER_LENGTH = 32


@dataclass(frozen=True)
class ProviderSignin:
    """A session opened through a provider, where the page goes next, and whether it is new."""

    session: Session
    return_url: str
    new_user: bool


class ExternalSignin:
    """Sign-in, link and unlink through the configured identity providers."""

    def __init__(
        self,
        *,
        accounts: Accounts,
        identities: IdentityStore,
        providers: dict[str, IdentityProvider],
        config: OidcConfig,
        limits: RateLimits,
    ) -> None:
        self._accounts = accounts
        self._identities = identities
        self._providers = providers
        self._config = config
        self._limits = limits

    async def _limit(self, origin: Origin) -> None:
        """Count an anonymous step against the sign-in limit of the caller's address."""
        await self._accounts.limit(
            f"oidc:address:{origin.client_address}", self._limits.signin_per_address
        )

    def list_providers(self) -> list[tuple[str, str]]:
        """Return (name, display name) of each configured provider."""
        return [(p.config.name, p.config.display_name) for p in self._providers.values()]

    def _provider(self, name: str) -> IdentityProvider:
        if not name:
            raise validation_error("provider", "is required")
        if len(name) > MAX_PROVIDER_LENGTH:
            raise validation_error("provider", f"must be at most {MAX_PROVIDER_LENGTH} characters")
        provider = self._providers.get(name)
        if provider is None:
            raise ApiError("PROVIDER_NOT_FOUND", "no identity provider of this name is configured")
        return provider

    def _return_url(self, url: str) -> str:
        if not url:
            return "/"
        if len(url) > MAX_RETURN_URL_LENGTH or not is_allowed_return_url(
            url, self._config.return_origins
        ):
            raise validation_error(
                "return_url", "must be a path on this site or a URL on an allowed origin"
            )
        return url

    async def start_signin(self, provider_name: str, return_url: str, origin: Origin) -> str:
        """Store a new sign-in request; return the provider's authorization URL."""
        await self._limit(origin)
        return await self._start(provider_name, return_url, None)

    async def start_link(self, user_id: str, provider_name: str, return_url: str) -> str:
        """Store a new link request for the user; return the provider's authorization URL."""
        user = await self._accounts.get_user(user_id)
        return await self._start(provider_name, return_url, user.id)

    async def _start(self, provider_name: str, return_url: str, user_id: str | None) -> str:
        provider = self._provider(provider_name)
        url = self._return_url(return_url)
        secrets = FlowSecrets.new()
        with _provider_unavailable_as_api_error():
            authorization_url = await provider.authorization_url(
                secrets, self._config.redirect_url
            )
        await self._identities.save_request(
            secrets.state,
            AuthorizationRequest(
                provider_name, user_id, secrets.nonce, secrets.code_verifier, url
            ),
        )
        return authorization_url

    async def _identity(
        self, code: str, state: str, user_id: str | None
    ) -> tuple[AuthorizationRequest, Identity]:
        """Spend the state's request, exchange the code, and return who the provider vouches for."""
        for name, value, longest in (
            ("code", code, MAX_CODE_LENGTH),
            ("state", state, MAX_STATE_LENGTH),
        ):
            if not value:
                raise validation_error(name, "is required")
            if len(value) > longest:
                raise validation_error(name, f"must be at most {longest} characters")
        request = await self._identities.take_request(state)
        if request is None or request.user_id != user_id:
            raise ApiError(
                "OIDC_STATE_INVALID",
                "this sign-in was not started here, has expired or was already completed",
            )
        provider = self._providers.get(request.provider)
        if provider is None:
            raise ApiError("PROVIDER_NOT_FOUND", "this identity provider is no longer configured")
        secrets = FlowSecrets(state, request.nonce, request.code_verifier)
        with _provider_unavailable_as_api_error():
            try:
                identity = await provider.identity(code, secrets, self._config.redirect_url)
            except ProviderError as exc:
                _log.warning(
                    "identity provider refused",
                    extra={"fields": {"provider": request.provider, "error": str(exc)}},
                )
                raise ApiError(
                    "OIDC_IDENTITY_INVALID", "the identity provider's answer did not verify"
                ) from None
        return request, identity

    async def complete_signin(self, code: str, state: str, origin: Origin) -> ProviderSignin:
        """Sign in (creating the user on a first visit) with the provider's identity."""
        await self._limit(origin)
        request, identity = await self._identity(code, state, None)
        user, new_user = await self._user_of(request.provider, identity)
        if user.totp_enabled:
            raise await self._second_factor_required(user, request)
        session = await self._accounts.open_session(user, origin)
        _log.info(
            "signed in through a provider",
            extra={"fields": {"user_id": user.id, "provider": request.provider}},
        )
        return ProviderSignin(session, request.return_url, new_user)

    async def _second_factor_required(
        self, user: User, request: AuthorizationRequest
    ) -> ApiError:
        """Store a sign-in ticket for the user; return the TOTP_REQUIRED error carrying it."""
        ticket, expire_time_ms = await self._identities.save_ticket(
            user.id, request.provider, request.return_url
        )
        _log.info(
            "provider sign-in waits for the second factor",
            extra={"fields": {"user_id": user.id, "provider": request.provider}},
        )
        expire_time = datetime.fromtimestamp(expire_time_ms / 1000, UTC)
        return ApiError(
            "TOTP_REQUIRED",
            "two-factor authentication is on: give totp_code (or recovery_code) with the "
            "signin ticket to VerifyProviderSignin",
            metadata={
                "signinTicket": ticket,
                "expireTime": expire_time.isoformat(timespec="seconds").replace("+00:00", "Z"),
            },
        )

    async def verify_signin(
        self, ticket: str, second_factor: SecondFactor, origin: Origin
    ) -> ProviderSignin:
        """Complete a provider sign-in that answered TOTP_REQUIRED with its ticket and a code."""
        await self._limit(origin)
        if not ticket:
            raise validation_error("signin_ticket", "is required")
        if len(ticket) > MAX_TICKET_LENGTH:
            raise validation_error(
                "signin_ticket", f"must be at most {MAX_TICKET_LENGTH} characters"
            )
        if not second_factor.given:
            raise validation_error("totp_code", "give totp_code or recovery_code")
        second_factor.check_shape()
        waiting = await self._identities.find_ticket(ticket)
        if waiting is None:
            raise _ticket_invalid()
        user = await self._accounts.get_user(waiting.user_id)
        await self._accounts.verify_second_factor(user, second_factor)
        if not await self._identities.take_ticket(ticket):
            raise _ticket_invalid()
        session = await self._accounts.open_session(user, origin)
        _log.info(
            "signed in through a provider",
            extra={"fields": {"user_id": user.id, "provider": waiting.provider}},
        )
        return ProviderSignin(session, waiting.return_url, False)

    async def _user_of(self, provider: str, identity: Identity) -> tuple[User, bool]:
        """Return the user of the identity, linking or creating one by email; and if new."""
        user_id = await self._identities.user_of(provider, identity.subject)
        if user_id is not None:
            return await self._accounts.get_user(user_id), False
        if not identity.email:
            raise ApiError(
                "PROVIDER_EMAIL_MISSING", "the identity provider did not share an email address"
            )
        try:
            email = normalize_email(identity.email)
        except ApiError:
            raise ApiError(
                "PROVIDER_EMAIL_MISSING", "the identity provider's email address is not usable"
            ) from None
        existing = await self._accounts.find_user(email)
        if existing is not None:
            if not identity.email_verified:
                raise ApiError(
                    "PROVIDER_EMAIL_NOT_VERIFIED",
                    "an account with this email exists and the provider does not say the "
                    "email is verified: sign in with your password, then link the provider",
                )
            if existing.totp_enabled:
                raise ApiError(
                    "IDENTITY_LINK_REQUIRED",
                    "the account with this email uses two-factor authentication: sign in "
                    "with your password and code, then link the provider",
                )
            await self._link(existing, provider, identity)
            return existing, False
        try:
            user = await self._accounts.create_passwordless_user(email)
        except EmailTakenError:
            # Another first sign-in with the same email won the race; let the user retry.
            raise ApiError("EMAIL_TAKEN", "this email is already registered") from None
        await self._link(user, provider, identity)
        return user, True

    async def _link(self, user: User, provider: str, identity: Identity) -> LinkedIdentity:
        try:
            await self._identities.link(user.id, provider, identity.subject, identity.email)
        except IdentityTakenError:
            raise ApiError(
                "IDENTITY_TAKEN",
                "this identity is linked to another user, or this user has one of this provider",
            ) from None
        _log.info("identity linked", extra={"fields": {"user_id": user.id, "provider": provider}})
        (linked,) = [i for i in await self._identities.list(user.id) if i.provider == provider]
        return linked

    async def complete_link(
        self, user_id: str, code: str, state: str
    ) -> tuple[LinkedIdentity, str]:
        """Link the provider's identity to the user who started the link."""
        user = await self._accounts.get_user(user_id)
        request, identity = await self._identity(code, state, user.id)
        for linked in await self._identities.list(user.id):
            if linked.provider == request.provider and linked.subject == identity.subject:
                return linked, request.return_url
        return await self._link(user, request.provider, identity), request.return_url

    async def unlink(self, user_id: str, provider: str) -> None:
        """Unlink the user's identity of ``provider``, unless it is their only way in."""
        user = await self._accounts.get_user(user_id)
        if not provider:
            raise validation_error("provider", "is required")
        linked = [i.provider for i in await self._identities.list(user.id)]
        if provider not in linked:
            raise ApiError("IDENTITY_NOT_FOUND", "no identity of this provider is linked")
        if len(linked) == 1 and not await self._accounts.has_password(user):
            raise ApiError(
                "LAST_SIGNIN_METHOD",
                "this is the only way to sign in to this account: link another provider first",
            )
        if await self._identities.unlink(user.id, provider):
            _log.info(
                "identity unlinked", extra={"fields": {"user_id": user.id, "provider": provider}}
            )

    async def list_identities(self, user_id: str) -> list[LinkedIdentity]:
        """Return the user's linked identities."""
        user = await self._accounts.get_user(user_id)
        return await self._identities.list(user.id)


def _ticket_invalid() -> ApiError:
    return ApiError(
        "SIGNIN_TICKET_INVALID",
        "this sign-in ticket is unknown, has expired or was already used; sign in again",
    )


@contextlib.contextmanager
def _provider_unavailable_as_api_error() -> Iterator[None]:
    """Turn an unreachable or unusable provider into SERVICE_UNAVAILABLE."""
    try:
        yield
    except (ProviderUnavailableError, ProviderError) as exc:
        # A provider error left here is its configuration (discovery), not the user's flow.
        _log.warning("identity provider unavailable: %s", exc)
        raise ApiError(
            "SERVICE_UNAVAILABLE", "the identity provider cannot be reached; retry shortly"
        ) from None
