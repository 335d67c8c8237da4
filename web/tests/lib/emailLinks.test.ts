import { describe, expect, it } from "vitest";
import { ApiClient, type FetchLike } from "../../src/lib/api";
import { emailLinkOf, requestPasswordReset, resetPassword } from "../../src/lib/emailLinks";
import { SessionStore } from "../../src/lib/session";

describe("emailed links", () => {
  it("reads the action and token of a link's fragment", () => {
    expect(emailLinkOf("#verify-email=AbC_-09")).toEqual({
      action: "verify-email",
      token: "AbC_-09",
    });
    expect(emailLinkOf("#reset-password=xyz")).toEqual({ action: "reset-password", token: "xyz" });
  });

  it("ignores fragments that are not emailed links", () => {
    for (const hash of ["", "#", "#verify-email=", "#other=abc", "#reset-password=a b", "#verify-email=<x>"]) {
      expect(emailLinkOf(hash)).toBeNull();
    }
    expect(emailLinkOf(`#verify-email=${"a".repeat(129)}`)).toBeNull();
  });

  it("sends the public calls without an access token, even when signed in", async () => {
    const seen: Array<[string, string | null, unknown]> = [];
    const fetcher: FetchLike = async (url, init) => {
      const headers = (init?.headers ?? {}) as Record<string, string>;
      seen.push([url, headers.Authorization ?? null, JSON.parse(String(init?.body))]);
      return new Response("{}", { status: 200 });
    };
    const sessions = new SessionStore(null);
    sessions.set({
      user: { id: "u1", email: "a@b.co" },
      accessToken: "access-1",
      refreshToken: "refresh-1",
      expiresAt: Date.now() + 900_000,
    });
    const api = new ApiClient("https://api.test", fetcher, sessions);
    await requestPasswordReset(api, "a@b.co");
    await resetPassword(api, "tok", "new passphrase");
    api.dispose();
    expect(seen).toEqual([
      ["https://api.test/v1/auth/requestPasswordReset", null, { email: "a@b.co" }],
      ["https://api.test/v1/auth/resetPassword", null, { token: "tok", newPassword: "new passphrase" }],
    ]);
  });
});
