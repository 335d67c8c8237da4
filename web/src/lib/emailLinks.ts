/** Emailed links: verifying the address and resetting the password. */

import type { ApiClient } from "./api";

export type EmailAction = "verify-email" | "reset-password";

/** A link the user followed from a message: `#verify-email=<token>` or `#reset-password=…`. */
export interface EmailLink {
  readonly action: EmailAction;
  readonly token: string;
}

/** Read an emailed link from the page's fragment, or null when it holds none. */
export function emailLinkOf(hash: string): EmailLink | null {
  const match = /^#(verify-email|reset-password)=([A-Za-z0-9_-]{1,128})$/.exec(hash);
  if (match === null) {
    return null;
  }
  return { action: match[1] as EmailAction, token: match[2] };
}

/** Spend a verification token; no access token needed. */
export async function verifyEmail(api: ApiClient, token: string): Promise<void> {
  await api.request("POST", "/v1/auth/verifyEmail", { body: { token }, auth: false });
}

/** Ask for a new verification link for the signed-in user. */
export async function resendVerification(api: ApiClient): Promise<void> {
  await api.request("POST", "/v1/users/me:resendVerification", { body: {} });
}

/** Ask for a reset link; the answer is the same whether the address has an account. */
export async function requestPasswordReset(api: ApiClient, email: string): Promise<void> {
  await api.request("POST", "/v1/auth/requestPasswordReset", { body: { email }, auth: false });
}

/** Set a new password with a reset token; every session of the user ends. */
export async function resetPassword(
  api: ApiClient,
  token: string,
  newPassword: string,
): Promise<void> {
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
