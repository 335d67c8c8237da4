"""``cfd.v1.AccountService`` over gRPC: protobuf in and out, the use cases in ``accounts``.

Client address (the key of the per-address rate limits): the gRPC peer's IP address. When
the caller proves it is internal (``x-cfd-internal-token``, i.e. the edge), the last entry
of its ``x-forwarded-for`` metadata is used instead: that is the address the edge itself
saw, whereas earlier entries could be anything a browser sent. A public caller's
``x-forwarded-for`` is ignored, so nobody can pick their own rate limit bucket. An IPv6
client counts as its /64 network, the smallest block one subscriber is usually given, so
that stepping through one's own addresses does not buy new attempts.

User agent (shown in the session list): an internal caller's ``x-forwarded-user-agent`` (the
browser's, as the edge saw it), otherwise the caller's own ``user-agent``.

The account security RPCs need to know which session is the caller's: the access token's
id (``jti``), read from the ``authorization`` metadata the server already verified.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import grpc
import sqlalchemy.exc
from google.protobuf import timestamp_pb2

from account_svc.accounts import Accounts, ActiveSession, SecondFactor, Session
from account_svc.external import ExternalSignin
from account_svc.identities import LinkedIdentity
from account_svc.notifications import Kind
from account_svc.sessions import Origin
from account_svc.users import User
from cfd.v1 import account_pb2, account_pb2_grpc, common_pb2
from mesh.auth import AUTHORIZATION, INTERNAL_TOKEN_HEADER, subject
from mesh.errors import ApiError, validation_error
from mesh.revocation import issued_token

_log = logging.getLogger(__name__)

FORWARDED_FOR_HEADER = "x-forwarded-for"
FORWARDED_USER_AGENT_HEADER = "x-forwarded-user-agent"
USER_AGENT_HEADER = "user-agent"
_UNKNOWN_ADDRESS = "unknown"


def _metadata_value(metadata: Sequence[tuple[str, str | bytes]], key: str) -> str | None:
    for name, value in metadata:
        if name == key:
            return value.decode(errors="replace") if isinstance(value, bytes) else value
    return None


def _peer_address(peer: str) -> str:
    """Return the IP of a gRPC peer string (``ipv4:1.2.3.4:5``, ``ipv6:[::1]:5``, ``unix:...``)."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    if kind == "unix":
        return "unix"
    return _UNKNOWN_ADDRESS


def client_address(
    peer: str, metadata: Sequence[tuple[str, str | bytes]], internal_token: str
) -> str:
    """Return the address that rate limits are counted against (see the module doc)."""
    forwarded = _metadata_value(metadata, FORWARDED_FOR_HEADER)
    if forwarded and _is_internal(metadata, internal_token):
        candidate = forwarded.rsplit(",", 1)[-1].strip()
        try:
            return _bucket(ipaddress.ip_address(candidate))
        except ValueError:
            pass
    address = _peer_address(peer)
    try:
        return _bucket(ipaddress.ip_address(address))
    except ValueError:
        return address


def _is_internal(metadata: Sequence[tuple[str, str | bytes]], internal_token: str) -> bool:
    presented = _metadata_value(metadata, INTERNAL_TOKEN_HEADER)
    return presented is not None and hmac.compare_digest(
        presented.encode(), internal_token.encode()
    )


def user_agent(metadata: Sequence[tuple[str, str | bytes]], internal_token: str) -> str:
    """Return the caller's user agent (see the module doc), or an empty string."""
    if _is_internal(metadata, internal_token):
        forwarded = _metadata_value(metadata, FORWARDED_USER_AGENT_HEADER)
        if forwarded is not None:
            return forwarded
    return _metadata_value(metadata, USER_AGENT_HEADER) or ""


def access_token_id(metadata: Sequence[tuple[str, str | bytes]]) -> str:
    """Return the id of the verified bearer token of the call, or raise TOKEN_INVALID."""
    header = _metadata_value(metadata, AUTHORIZATION) or ""
    issued = issued_token(header.partition(" ")[2].strip())
    if issued is None:
        raise ApiError("TOKEN_INVALID", "this call has no access token")
    return issued.token_id


def _timestamp(time_ms: int) -> timestamp_pb2.Timestamp:
    seconds, millis = divmod(time_ms, 1000)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=millis * 1_000_000)


def _session_message(session: ActiveSession) -> account_pb2.Session:
    info = session.info
    return account_pb2.Session(
        id=info.id,
        create_time=_timestamp(info.create_time_ms),
        last_use_time=_timestamp(info.last_use_ms),
        client_address=info.client_address,
        user_agent=info.user_agent,
        current=session.current,
    )


def _bucket(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(address, ipaddress.IPv4Address) or address.is_loopback:
        return str(address)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


def _user_message(user: User) -> account_pb2.User:
    return account_pb2.User(
        id=user.id,
        email=user.email,
        create_time=_timestamp(user.create_time_ms),
        totp_enabled=user.totp_enabled,
        email_verified=user.email_verified,
    )


def _settings(switches: Mapping[Kind, bool]) -> list[account_pb2.NotificationSetting]:
    return [
        account_pb2.NotificationSetting(kind=kind, enabled=enabled)
        for kind, enabled in switches.items()
    ]


def _identity_message(identity: LinkedIdentity) -> account_pb2.LinkedIdentity:
    return account_pb2.LinkedIdentity(
        provider=identity.provider,
        email=identity.email,
        link_time=_timestamp(identity.link_time_ms),
    )


_MARGIN_MODES = frozenset({common_pb2.MARGIN_MODE_ISOLATED, common_pb2.MARGIN_MODE_CROSS})


def _margin_mode_name(value: common_pb2.MarginMode.ValueType) -> str:
    """Return a requested margin mode's name, "" for the default; reject an unknown one."""
    if value == common_pb2.MARGIN_MODE_UNSPECIFIED:
        return ""
    if value not in _MARGIN_MODES:
        raise validation_error("marginMode", "must be MARGIN_MODE_ISOLATED or MARGIN_MODE_CROSS")
    return common_pb2.MarginMode.Name(value)


_POSITION_MODES = frozenset({common_pb2.POSITION_MODE_HEDGING, common_pb2.POSITION_MODE_NETTING})


def _position_mode_name(value: common_pb2.PositionMode.ValueType) -> str:
    """Return a requested position mode's name, "" for the default; reject an unknown one."""
    if value == common_pb2.POSITION_MODE_UNSPECIFIED:
        return ""
    if value not in _POSITION_MODES:
        raise validation_error(
            "positionMode", "must be POSITION_MODE_HEDGING or POSITION_MODE_NETTING"
        )
    return common_pb2.PositionMode.Name(value)


def _session_fields(session: Session) -> dict[str, Any]:
    return {
        "user": _user_message(session.user),
        "access_token": session.access_token,
        "refresh_token": session.refresh_token,
        "expires_in": session.expires_in,
    }


Context = grpc.aio.ServicerContext[Any, Any]


@contextlib.contextmanager
def _database_unavailable_as_api_error() -> Iterator[None]:
    # A database that is down or locked is a retryable condition, not an internal error.
    try:
        yield
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as exc:
        # The type only: the message quotes the statement, and never its parameters belong
        # in a log line.
        _log.warning("accounts database unavailable: %s", type(exc.orig).__name__)
        raise ApiError(
            "SERVICE_UNAVAILABLE", "the accounts database is unavailable; retry shortly"
        ) from None


class AccountServicer(account_pb2_grpc.AccountServiceServicer):
    """The gRPC face of ``Accounts``; errors are ``ApiError`` mapped by the server shell."""

    def __init__(
        self, accounts: Accounts, internal_token: str, external: ExternalSignin
    ) -> None:
        self._accounts = accounts
        self._internal_token = internal_token
        self._external = external

    def _client(self, context: Context) -> str:
        return client_address(
            context.peer(), tuple(context.invocation_metadata() or ()), self._internal_token
        )

    def _user_agent(self, context: Context) -> str:
        return user_agent(tuple(context.invocation_metadata() or ()), self._internal_token)

    async def Signup(
        self, request: account_pb2.SignupRequest, context: Context
    ) -> account_pb2.SignupResponse:
        """Create a user and their trading account, and sign in."""
        margin_mode = _margin_mode_name(request.margin_mode)
        position_mode = _position_mode_name(request.position_mode)
        with _database_unavailable_as_api_error():
            session = await self._accounts.signup(
                request.email,
                request.password,
                self._client(context),
                self._user_agent(context),
                margin_mode,
                position_mode,
            )
        return account_pb2.SignupResponse(**_session_fields(session))

    async def Signin(
        self, request: account_pb2.SigninRequest, context: Context
    ) -> account_pb2.SigninResponse:
        """Sign in with email and password."""
        with _database_unavailable_as_api_error():
            session = await self._accounts.signin(
                request.email,
                request.password,
                self._client(context),
                self._user_agent(context),
                SecondFactor(request.totp_code, request.recovery_code),
            )
        return account_pb2.SigninResponse(**_session_fields(session))

    async def RefreshToken(
        self, request: account_pb2.RefreshTokenRequest, context: Context
    ) -> account_pb2.RefreshTokenResponse:
        """Rotate the refresh token."""
        with _database_unavailable_as_api_error():
            session = await self._accounts.refresh(request.refresh_token, self._client(context))
        return account_pb2.RefreshTokenResponse(**_session_fields(session))

    async def Signout(
        self, request: account_pb2.SignoutRequest, context: Context
    ) -> account_pb2.SignoutResponse:
        """Revoke the refresh token's session."""
        with _database_unavailable_as_api_error():
            await self._accounts.signout(request.refresh_token)
        return account_pb2.SignoutResponse()

    async def GetUser(
        self, request: account_pb2.GetUserRequest, context: Context
    ) -> account_pb2.GetUserResponse:
        """Return the caller."""
        with _database_unavailable_as_api_error():
            user = await self._accounts.get_user(subject())
        return account_pb2.GetUserResponse(user=_user_message(user))

    async def ChangePassword(
        self, request: account_pb2.ChangePasswordRequest, context: Context
    ) -> account_pb2.ChangePasswordResponse:
        """Replace the caller's password and revoke their other sessions."""
        token_id = access_token_id(tuple(context.invocation_metadata() or ()))
        with _database_unavailable_as_api_error():
            revoked = await self._accounts.change_password(
                subject(), token_id, request.current_password, request.new_password
            )
        return account_pb2.ChangePasswordResponse(revoked_sessions=revoked)

    async def ChangeEmail(
        self, request: account_pb2.ChangeEmailRequest, context: Context
    ) -> account_pb2.ChangeEmailResponse:
        """Move the caller to another email address; the new one must be verified again."""
        with _database_unavailable_as_api_error():
            user = await self._accounts.change_email(
                subject(), request.password, request.new_email
            )
        return account_pb2.ChangeEmailResponse(user=_user_message(user))

    async def ListSessions(
        self, request: account_pb2.ListSessionsRequest, context: Context
    ) -> account_pb2.ListSessionsResponse:
        """List the caller's active sessions."""
        token_id = access_token_id(tuple(context.invocation_metadata() or ()))
        with _database_unavailable_as_api_error():
            sessions = await self._accounts.list_sessions(subject(), token_id)
        return account_pb2.ListSessionsResponse(sessions=[_session_message(s) for s in sessions])

    async def RevokeSession(
        self, request: account_pb2.RevokeSessionRequest, context: Context
    ) -> account_pb2.RevokeSessionResponse:
        """Revoke one of the caller's sessions."""
        with _database_unavailable_as_api_error():
            await self._accounts.revoke_session(subject(), request.session_id)
        return account_pb2.RevokeSessionResponse()

    async def VerifyEmail(
        self, request: account_pb2.VerifyEmailRequest, context: Context
    ) -> account_pb2.VerifyEmailResponse:
        """Verify an email address with the emailed token."""
        with _database_unavailable_as_api_error():
            await self._accounts.verify_email(request.token, self._client(context))
        return account_pb2.VerifyEmailResponse()

    async def ResendVerification(
        self, request: account_pb2.ResendVerificationRequest, context: Context
    ) -> account_pb2.ResendVerificationResponse:
        """Mail the caller a new verification link."""
        with _database_unavailable_as_api_error():
            await self._accounts.resend_verification(subject())
        return account_pb2.ResendVerificationResponse()

    async def RequestPasswordReset(
        self, request: account_pb2.RequestPasswordResetRequest, context: Context
    ) -> account_pb2.RequestPasswordResetResponse:
        """Mail a reset link to the address if it has an account; answer alike either way."""
        with _database_unavailable_as_api_error():
            await self._accounts.request_password_reset(request.email, self._client(context))
        return account_pb2.RequestPasswordResetResponse()

    async def ResetPassword(
        self, request: account_pb2.ResetPasswordRequest, context: Context
    ) -> account_pb2.ResetPasswordResponse:
        """Set a new password with an emailed reset token and revoke every session."""
        with _database_unavailable_as_api_error():
            await self._accounts.reset_password(
                request.token, request.new_password, self._client(context)
            )
        return account_pb2.ResetPasswordResponse()

    async def GetNotificationSettings(
        self, request: account_pb2.GetNotificationSettingsRequest, context: Context
    ) -> account_pb2.GetNotificationSettingsResponse:
        """Return the caller's notification switches."""
        with _database_unavailable_as_api_error():
            switches = await self._accounts.notification_settings(subject())
        return account_pb2.GetNotificationSettingsResponse(settings=_settings(switches))

    async def UpdateNotificationSettings(
        self, request: account_pb2.UpdateNotificationSettingsRequest, context: Context
    ) -> account_pb2.UpdateNotificationSettingsResponse:
        """Switch kinds of notification on or off."""
        changes = [(setting.kind, setting.enabled) for setting in request.settings]
        with _database_unavailable_as_api_error():
            switches = await self._accounts.update_notification_settings(subject(), changes)
        return account_pb2.UpdateNotificationSettingsResponse(settings=_settings(switches))

    async def EnrolTotp(
        self, request: account_pb2.EnrolTotpRequest, context: Context
    ) -> account_pb2.EnrolTotpResponse:
        """Start enrolling the caller in two-factor authentication."""
        with _database_unavailable_as_api_error():
            enrolment = await self._accounts.enrol_totp(subject())
        return account_pb2.EnrolTotpResponse(
            secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri
        )

    async def ConfirmTotp(
        self, request: account_pb2.ConfirmTotpRequest, context: Context
    ) -> account_pb2.ConfirmTotpResponse:
        """Enable two-factor authentication with a first code."""
        with _database_unavailable_as_api_error():
            codes = await self._accounts.confirm_totp(subject(), request.totp_code)
        return account_pb2.ConfirmTotpResponse(recovery_codes=codes)

    async def DisableTotp(
        self, request: account_pb2.DisableTotpRequest, context: Context
    ) -> account_pb2.DisableTotpResponse:
        """Turn two-factor authentication off."""
        with _database_unavailable_as_api_error():
            await self._accounts.disable_totp(
                subject(),
                request.password,
                SecondFactor(request.totp_code, request.recovery_code),
            )
        return account_pb2.DisableTotpResponse()

    async def ListIdentityProviders(
        self, request: account_pb2.ListIdentityProvidersRequest, context: Context
    ) -> account_pb2.ListIdentityProvidersResponse:
        """List the configured identity providers."""
        return account_pb2.ListIdentityProvidersResponse(
            providers=[
                account_pb2.IdentityProvider(name=name, display_name=display)
                for name, display in self._external.list_providers()
            ]
        )

    async def StartProviderSignin(
        self, request: account_pb2.StartProviderSigninRequest, context: Context
    ) -> account_pb2.StartProviderSigninResponse:
        """Return the provider's authorization URL for a sign-in."""
        with _database_unavailable_as_api_error():
            url = await self._external.start_signin(
                request.provider, request.return_url, Origin(self._client(context))
            )
        return account_pb2.StartProviderSigninResponse(authorization_url=url)

    async def CompleteProviderSignin(
        self, request: account_pb2.CompleteProviderSigninRequest, context: Context
    ) -> account_pb2.CompleteProviderSigninResponse:
        """Sign in with the provider's code."""
        origin = Origin(self._client(context), self._user_agent(context))
        with _database_unavailable_as_api_error():
            signin = await self._external.complete_signin(request.code, request.state, origin)
        return account_pb2.CompleteProviderSigninResponse(
            **_session_fields(signin.session),
            return_url=signin.return_url,
            new_user=signin.new_user,
        )

    async def VerifyProviderSignin(
        self, request: account_pb2.VerifyProviderSigninRequest, context: Context
    ) -> account_pb2.VerifyProviderSigninResponse:
        """Finish a provider sign-in that asked for the second factor."""
        origin = Origin(self._client(context), self._user_agent(context))
        with _database_unavailable_as_api_error():
            signin = await self._external.verify_signin(
                request.signin_ticket,
                SecondFactor(request.totp_code, request.recovery_code),
                origin,
            )
        return account_pb2.VerifyProviderSigninResponse(
            **_session_fields(signin.session),
            return_url=signin.return_url,
            new_user=signin.new_user,
        )

    async def StartIdentityLink(
        self, request: account_pb2.StartIdentityLinkRequest, context: Context
    ) -> account_pb2.StartIdentityLinkResponse:
        """Return the provider's authorization URL for linking it to the caller."""
        with _database_unavailable_as_api_error():
            url = await self._external.start_link(
                subject(), request.provider, request.return_url
            )
        return account_pb2.StartIdentityLinkResponse(authorization_url=url)

    async def CompleteIdentityLink(
        self, request: account_pb2.CompleteIdentityLinkRequest, context: Context
    ) -> account_pb2.CompleteIdentityLinkResponse:
        """Link the provider's identity to the caller."""
        with _database_unavailable_as_api_error():
            identity, return_url = await self._external.complete_link(
                subject(), request.code, request.state
            )
        return account_pb2.CompleteIdentityLinkResponse(
            identity=_identity_message(identity), return_url=return_url
        )

    async def UnlinkIdentity(
        self, request: account_pb2.UnlinkIdentityRequest, context: Context
    ) -> account_pb2.UnlinkIdentityResponse:
        """Unlink one of the caller's identities."""
        with _database_unavailable_as_api_error():
            await self._external.unlink(subject(), request.provider)
        return account_pb2.UnlinkIdentityResponse()

    async def ListIdentities(
        self, request: account_pb2.ListIdentitiesRequest, context: Context
    ) -> account_pb2.ListIdentitiesResponse:
        """List the caller's linked identities."""
        with _database_unavailable_as_api_error():
            identities = await self._external.list_identities(subject())
        return account_pb2.ListIdentitiesResponse(
            identities=[_identity_message(i) for i in identities]
        )
