/** Account security calls: password change, sessions, two-factor authentication. */

import type { ApiClient } from "./api";
import type { User } from "./types";

/** An active session (one sign-in) as `GET /v1/users/me/sessions` lists it. */
export interface AccountSession {
  readonly id: string;
  readonly createTime?: string;
  readonly lastUseTime?: string;
  readonly clientAddress?: string;
  readonly userAgent?: string;
  readonly current?: boolean;
}

/** A new TOTP secret, for manual entry, and its otpauth URI, for a QR code. */
export interface TotpEnrolment {
  readonly secret: string;
  readonly otpauthUri: string;
}

/** What proves the second factor: a six-digit code or a recovery code. */
export interface SecondFactor {
  readonly totpCode?: string;
  readonly recoveryCode?: string;
}

/** Replace the password; return how many other sessions were signed out. */
export async function changePassword(
  api: ApiClient,
  currentPassword: string,
  newPassword: string,
): Promise<number> {
  const response = await api.request<{ revokedSessions?: number }>(
    "POST",
    "/v1/users/me:changePassword",
    { body: { currentPassword, newPassword } },
  );
  return response.revokedSessions ?? 0;
}

/** Move the account to another address (unverified until its mailed link is opened). */
export async function changeEmail(api: ApiClient, password: string, newEmail: string): Promise<User> {
  const response = await api.request<{ user: User }>("POST", "/v1/users/me:changeEmail", {
    body: { password, newEmail },
  });
  return response.user;
}

export async function listSessions(api: ApiClient): Promise<AccountSession[]> {
  const response = await api.request<{ sessions?: AccountSession[] }>(
    "GET",
    "/v1/users/me/sessions",
  );
  return response.sessions ?? [];
}

export async function revokeSession(api: ApiClient, id: string): Promise<void> {
  await api.request("POST", `/v1/users/me/sessions/${encodeURIComponent(id)}:revoke`, {
    body: {},
  });
}

export async function enrolTotp(api: ApiClient): Promise<TotpEnrolment> {
  return api.request<TotpEnrolment>("POST", "/v1/users/me/totp:enrol", { body: {} });
}

/** Turn two-factor authentication on; return the recovery codes, shown only this once. */
export async function confirmTotp(api: ApiClient, totpCode: string): Promise<string[]> {
  const response = await api.request<{ recoveryCodes?: string[] }>(
    "POST",
    "/v1/users/me/totp:confirm",
    { body: { totpCode } },
  );
  return response.recoveryCodes ?? [];
}

export async function disableTotp(
  api: ApiClient,
  password: string,
  second: SecondFactor,
): Promise<void> {
  await api.request("POST", "/v1/users/me/totp:disable", { body: { password, ...second } });
}

/** Return the second factor a typed code stands for: six digits, else a recovery code. */
export function secondFactorOf(code: string): SecondFactor {
  const trimmed = code.trim();
  return /^\d{6}$/.test(trimmed) ? { totpCode: trimmed } : { recoveryCode: trimmed };
}

/** What a link mailed by the accounts service asks the page to do. */
export interface EmailLink {
  readonly kind: "verify-email" | "reset-password";
  readonly token: string;
}

/**
 * Read a mailed link's fragment (`#verify-email=<token>` or `#reset-password=<token>`); null
 * for any other fragment. The token travels in the fragment so that it never reaches a server
 * log as part of a URL.
 */
export function emailLinkOf(hash: string): EmailLink | null {
  const match = /^#(verify-email|reset-password)=([A-Za-z0-9_.~-]{1,512})$/.exec(hash);
  if (match === null) return null;
  const kind = match[1] === "verify-email" ? "verify-email" : "reset-password";
  return { kind, token: match[2] ?? "" };
}

/** Confirm the email address with the token of a verification link. */
export async function verifyEmail(api: ApiClient, token: string): Promise<void> {
  await api.request("POST", "/v1/auth/verifyEmail", { body: { token }, auth: false });
}

/** Mail the signed-in user a new verification link. */
export async function resendVerification(api: ApiClient): Promise<void> {
  await api.request("POST", "/v1/users/me:resendVerification", { body: {} });
}

/** Ask for a reset link; the answer is the same whether or not the address has an account. */
export async function requestPasswordReset(api: ApiClient, email: string): Promise<void> {
  await api.request("POST", "/v1/auth/requestPasswordReset", {
    body: { email },
    auth: false,
  });
}

/** Set a new password with the token of a reset link; every session of the user ends. */
export async function resetPassword(api: ApiClient, token: string, newPassword: string): Promise<void> {
  await api.request("POST", "/v1/auth/resetPassword", {
    body: { token, newPassword },
    auth: false,
  });
}

/** Whether one kind of trading event is emailed (`NOTIFICATION_KIND_*`). */
export interface NotificationSetting {
  readonly kind: string;
  readonly enabled?: boolean;
}

/** Read the user's notification switches, one per kind. */
export async function getNotificationSettings(
  api: ApiClient,
): Promise<readonly NotificationSetting[]> {
  const response = await api.request<{ settings?: NotificationSetting[] }>(
    "GET",
    "/v1/users/me/notificationSettings",
  );
  return response.settings ?? [];
}

/** Switch one kind on or off; return every kind's switch after the change. */
export async function setNotification(
  api: ApiClient,
  kind: string,
  enabled: boolean,
): Promise<readonly NotificationSetting[]> {
  const response = await api.request<{ settings?: NotificationSetting[] }>(
    "PATCH",
    "/v1/users/me/notificationSettings",
    { body: { settings: [{ kind, enabled }] } },
  );
  return response.settings ?? [];
}
