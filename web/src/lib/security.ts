/** Account security calls: password change, sessions, two-factor authentication. */

import type { ApiClient } from "./api";

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
