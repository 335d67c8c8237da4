import { describe, expect, it } from "vitest";
import {
  changeEmail,
  changePassword,
  confirmTotp,
  disableTotp,
  emailLinkOf,
  enrolTotp,
  getNotificationSettings,
  listSessions,
  requestPasswordReset,
  resendVerification,
  resetPassword,
  revokeSession,
  secondFactorOf,
  setNotification,
  verifyEmail,
} from "../../src/lib/security";
import { client, json } from "./httpFakes";

describe("account security calls", () => {
  it("changes the password with both passwords and the access token", async () => {
    const { api, calls } = client({
      "/v1/users/me:changePassword": () => json(200, { revokedSessions: 2 }),
    });
    expect(await changePassword(api, "old one", "new passphrase")).toBe(2);
    expect(calls[0]).toEqual({
      url: "https://api.test/v1/users/me:changePassword",
      method: "POST",
      auth: "Bearer access-1",
      body: { currentPassword: "old one", newPassword: "new passphrase" },
    });
  });

  it("reads zero revoked sessions from an empty answer", async () => {
    const { api } = client({ "/v1/users/me:changePassword": () => json(200, {}) });
    expect(await changePassword(api, "a", "b")).toBe(0);
  });

  it("lists sessions and revokes one by its escaped id", async () => {
    const sessions = [{ id: "s/1", current: true }, { id: "s2", userAgent: "Firefox" }];
    const { api, calls } = client({
      "/v1/users/me/sessions": () => json(200, { sessions }),
      "/v1/users/me/sessions/s%2F1:revoke": () => json(200, {}),
    });
    expect(await listSessions(api)).toEqual(sessions);
    await revokeSession(api, "s/1");
    expect(calls.map((call) => [call.method, call.url])).toEqual([
      ["GET", "https://api.test/v1/users/me/sessions"],
      ["POST", "https://api.test/v1/users/me/sessions/s%2F1:revoke"],
    ]);
  });

  it("enrols, confirms and disables two-factor authentication", async () => {
    const enrolment = { secret: "JBSWY3DPEHPK3PXP", otpauthUri: "otpauth://totp/CFD%20Mesh:a" };
    const { api, calls } = client({
      "/v1/users/me/totp:enrol": () => json(200, enrolment),
      "/v1/users/me/totp:confirm": () => json(200, { recoveryCodes: ["AAAA-BBBB"] }),
      "/v1/users/me/totp:disable": () => json(200, {}),
    });
    expect(await enrolTotp(api)).toEqual(enrolment);
    expect(await confirmTotp(api, "123456")).toEqual(["AAAA-BBBB"]);
    await disableTotp(api, "pw", { recoveryCode: "AAAA-BBBB" });
    expect(calls.map((call) => call.body)).toEqual([
      {},
      { totpCode: "123456" },
      { password: "pw", recoveryCode: "AAAA-BBBB" },
    ]);
  });

  it("surfaces the reason of a refused code", async () => {
    const refused = {
      code: 16,
      message: "wrong or already used code",
      details: [
        { "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "INVALID_CREDENTIALS", domain: "cfd.v1" },
      ],
    };
    const { api } = client({ "/v1/users/me/totp:confirm": () => json(401, refused) });
    await expect(confirmTotp(api, "000000")).rejects.toMatchObject({ reason: "INVALID_CREDENTIALS" });
  });

  it("sends the sign-in code only when one is given", async () => {
    const auth = { user: { id: "u1", email: "a@b.co" }, accessToken: "a2", refreshToken: "r2", expiresIn: 900 };
    const { api, calls } = client({ "/v1/auth/signin": () => json(200, auth) });
    await api.signin("a@b.co", "pw");
    await api.signin("a@b.co", "pw", secondFactorOf(" 123456 "));
    await api.signin("a@b.co", "pw", secondFactorOf("aaaa-bbbb-cccc-dddd"));
    expect(calls.map((call) => call.body)).toEqual([
      { email: "a@b.co", password: "pw" },
      { email: "a@b.co", password: "pw", totpCode: "123456" },
      { email: "a@b.co", password: "pw", recoveryCode: "aaaa-bbbb-cccc-dddd" },
    ]);
  });
});

describe("mailed links", () => {
  it("reads a verification or reset token from the fragment, and nothing else", () => {
    expect(emailLinkOf("#verify-email=abc_DEF-1.2~")).toEqual({ kind: "verify-email", token: "abc_DEF-1.2~" });
    expect(emailLinkOf("#reset-password=t0k")).toEqual({ kind: "reset-password", token: "t0k" });
    for (const other of ["", "#", "#verify-email=", "#reset-password=a b", "#other=abc", "#verify-email=a&x=1"]) {
      expect(emailLinkOf(other)).toBeNull();
    }
  });

  it("sends the link's token without an access token, and resends with one", async () => {
    const { api, calls } = client({
      "/v1/auth/verifyEmail": () => json(200, {}),
      "/v1/auth/requestPasswordReset": () => json(200, {}),
      "/v1/auth/resetPassword": () => json(200, {}),
      "/v1/users/me:resendVerification": () => json(200, {}),
    });
    await verifyEmail(api, "v1");
    await requestPasswordReset(api, "a@b.co");
    await resetPassword(api, "r1", "new passphrase");
    await resendVerification(api);
    expect(calls.map((call) => [call.url.replace("https://api.test", ""), call.auth, call.body])).toEqual([
      ["/v1/auth/verifyEmail", null, { token: "v1" }],
      ["/v1/auth/requestPasswordReset", null, { email: "a@b.co" }],
      ["/v1/auth/resetPassword", null, { token: "r1", newPassword: "new passphrase" }],
      ["/v1/users/me:resendVerification", "Bearer access-1", {}],
    ]);
  });

  it("surfaces a used reset token's reason", async () => {
    const { api } = client({
      "/v1/auth/resetPassword": () =>
        json(400, { code: 9, message: "this link was already used", details: [
          { "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "EMAIL_TOKEN_USED", domain: "cfd" },
        ] }),
    });
    await expect(resetPassword(api, "r1", "new passphrase")).rejects.toMatchObject({ reason: "EMAIL_TOKEN_USED" });
  });
});

describe("notification switches", () => {
  it("reads the switches and changes one kind, reading back every kind", async () => {
    const after = [
      { kind: "NOTIFICATION_KIND_LIQUIDATION" },
      { kind: "NOTIFICATION_KIND_STOP_LOSS", enabled: true },
    ];
    const { api, calls } = client({
      "/v1/users/me/notificationSettings": () => json(200, { settings: after }),
    });
    expect(await getNotificationSettings(api)).toEqual(after);
    expect(await setNotification(api, "NOTIFICATION_KIND_LIQUIDATION", false)).toEqual(after);
    expect(calls.map((call) => [call.method, call.auth, call.body])).toEqual([
      ["GET", "Bearer access-1", undefined],
      ["PATCH", "Bearer access-1", { settings: [{ kind: "NOTIFICATION_KIND_LIQUIDATION", enabled: false }] }],
    ]);
  });
});

describe("email change", () => {
  it("sends the password and the new address with the access token, and reads the user", async () => {
    const { api, calls } = client({
      "/v1/users/me:changeEmail": () => json(200, { user: { id: "u1", email: "new@b.co" } }),
    });
    expect(await changeEmail(api, "pw", "new@b.co")).toEqual({ id: "u1", email: "new@b.co" });
    expect(calls[0]).toEqual({
      url: "https://api.test/v1/users/me:changeEmail",
      method: "POST",
      auth: "Bearer access-1",
      body: { password: "pw", newEmail: "new@b.co" },
    });
  });
});
