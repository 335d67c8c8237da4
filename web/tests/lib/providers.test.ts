import { describe, expect, it } from "vitest";
import {
  completeFlow,
  currentReturnUrl,
  listIdentities,
  listProviders,
  startIdentityLink,
  startProviderSignin,
  unlinkIdentity,
} from "../../src/lib/providers";
import { MemoryStorage, client, json } from "./httpFakes";

const AUTHORIZE = "https://idp.test/authorize?client_id=cfd&state=st-1&nonce=n";
const SIGNED_IN = {
  user: { id: "u2", email: "new@b.co" },
  accessToken: "a2",
  refreshToken: "r2",
  expiresIn: 900,
  returnUrl: "/#/security",
};

describe("identity provider flows", () => {
  it("lists providers without the access token", async () => {
    const providers = [{ name: "google", displayName: "Google" }];
    const { api, calls } = client({ "/v1/auth/providers": () => json(200, { providers }) });
    expect(await listProviders(api)).toEqual(providers);
    expect(calls[0].auth).toBeNull();
  });

  it("remembers the state of a sign-in and completes only that one", async () => {
    const storage = new MemoryStorage();
    const { api, calls } = client({
      "/v1/auth/providers/google:start": () => json(200, { authorizationUrl: AUTHORIZE }),
      "/v1/auth/providers:complete": () => json(200, SIGNED_IN),
    });
    expect(await startProviderSignin(api, storage, "google", "/#/security")).toBe(AUTHORIZE);
    expect(calls[0].body).toEqual({ returnUrl: "/#/security" });

    const result = await completeFlow(api, storage, "?code=c-1&state=st-1&iss=x");
    expect(result).toEqual({ returnUrl: "/#/security", message: null });
    expect(calls[1].body).toEqual({ code: "c-1", state: "st-1" });
    expect(api.sessions.get()?.user.id).toBe("u2");
    // The remembered state is spent: the same answer again is not completed.
    const again = await completeFlow(api, storage, "?code=c-1&state=st-1");
    expect(again?.message).toMatch(/not started in this browser/);
    expect(calls).toHaveLength(2);
  });

  it("does not complete a state this tab did not start", async () => {
    const storage = new MemoryStorage();
    const { api, calls } = client({
      "/v1/auth/providers/google:start": () => json(200, { authorizationUrl: AUTHORIZE }),
    });
    await startProviderSignin(api, storage, "google", "/");
    const result = await completeFlow(api, storage, "?code=c-9&state=someone-elses");
    expect(result?.message).toMatch(/not started in this browser/);
    expect(calls).toHaveLength(1);
  });

  it("ignores a page that no provider sent back and reports a refusal", async () => {
    const storage = new MemoryStorage();
    const { api } = client({
      "/v1/auth/providers/google:start": () => json(200, { authorizationUrl: AUTHORIZE }),
    });
    expect(await completeFlow(api, storage, "?tab=positions")).toBeNull();
    await startProviderSignin(api, storage, "google", "/");
    const denied = await completeFlow(api, storage, "?error=access_denied&state=st-1");
    expect(denied?.message).toMatch(/did not sign you in/);
  });

  it("links, lists and unlinks with the access token", async () => {
    const storage = new MemoryStorage();
    const identity = { provider: "github", email: "a@b.co", linkTime: "2026-01-01T00:00:00Z" };
    const { api, calls } = client({
      "/v1/users/me/identities/github:link": () => json(200, { authorizationUrl: AUTHORIZE }),
      "/v1/users/me/identities:complete": () => json(200, { identity, returnUrl: "/" }),
      "/v1/users/me/identities": () => json(200, { identities: [identity] }),
      "/v1/users/me/identities/github:unlink": () => json(200, {}),
    });
    await startIdentityLink(api, storage, "github", "/");
    expect(await completeFlow(api, storage, "?code=c&state=st-1")).toEqual({
      returnUrl: "/",
      message: "Linked github.",
    });
    expect(await listIdentities(api)).toEqual([identity]);
    await unlinkIdentity(api, "github");
    expect(calls.map((call) => [call.method, call.url, call.auth])).toEqual([
      ["POST", "https://api.test/v1/users/me/identities/github:link", "Bearer access-1"],
      ["POST", "https://api.test/v1/users/me/identities:complete", "Bearer access-1"],
      ["GET", "https://api.test/v1/users/me/identities", "Bearer access-1"],
      ["POST", "https://api.test/v1/users/me/identities/github:unlink", "Bearer access-1"],
    ]);
  });

  it("surfaces the reason a provider sign-in was refused", async () => {
    const storage = new MemoryStorage();
    const refused = {
      code: 9,
      message: "an account with this email exists",
      details: [
        { "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "PROVIDER_EMAIL_NOT_VERIFIED", domain: "cfd.v1" },
      ],
    };
    const { api } = client({
      "/v1/auth/providers/google:start": () => json(200, { authorizationUrl: AUTHORIZE }),
      "/v1/auth/providers:complete": () => json(400, refused),
    });
    await startProviderSignin(api, storage, "google", "/");
    await expect(completeFlow(api, storage, "?code=c&state=st-1")).rejects.toMatchObject({
      reason: "PROVIDER_EMAIL_NOT_VERIFIED",
    });
  });

  it("turns a two-factor answer into a challenge that the code completes", async () => {
    const storage = new MemoryStorage();
    const challenge = {
      code: 16,
      message: "two-factor authentication is on",
      details: [
        {
          "@type": "type.googleapis.com/google.rpc.ErrorInfo",
          reason: "TOTP_REQUIRED",
          domain: "cfd.v1",
          metadata: { signinTicket: "ticket-1", expireTime: "2026-01-01T00:05:00Z" },
        },
      ],
    };
    const { api, calls } = client({
      "/v1/auth/providers/google:start": () => json(200, { authorizationUrl: AUTHORIZE }),
      "/v1/auth/providers:complete": () => json(401, challenge),
      "/v1/auth/providers:verify": () => json(200, SIGNED_IN),
    });
    api.sessions.set(null);
    await startProviderSignin(api, storage, "google", "/#/security");
    const result = await completeFlow(api, storage, "?code=c&state=st-1");
    expect(result?.challenge).toEqual({ signinTicket: "ticket-1" });
    expect(result?.message).toBeNull();
    expect(api.sessions.get()).toBeNull();

    expect(await api.verifyProviderSignin("ticket-1", { totpCode: "123456" })).toBe("/#/security");
    expect(calls[2].body).toEqual({ signinTicket: "ticket-1", totpCode: "123456" });
    expect(calls[2].auth).toBeNull();
    expect(api.sessions.get()?.user.id).toBe("u2");
  });

  it("treats TOTP_REQUIRED without a ticket as a refusal", async () => {
    const storage = new MemoryStorage();
    const bare = {
      code: 16,
      message: "two-factor authentication is on",
      details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "TOTP_REQUIRED" }],
    };
    const { api } = client({
      "/v1/auth/providers/google:start": () => json(200, { authorizationUrl: AUTHORIZE }),
      "/v1/auth/providers:complete": () => json(401, bare),
    });
    await startProviderSignin(api, storage, "google", "/");
    await expect(completeFlow(api, storage, "?code=c&state=st-1")).rejects.toMatchObject({
      reason: "TOTP_REQUIRED",
    });
  });

  it("returns to the same path and hash, never the query", () => {
    expect(currentReturnUrl({ pathname: "/", hash: "#/security" })).toBe("/#/security");
  });
});
