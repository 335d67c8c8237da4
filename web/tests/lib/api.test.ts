import { describe, expect, it } from "vitest";
import { ApiClient, type FetchLike } from "../../src/lib/api";
import { ApiError, fieldErrorsOf, fieldSentence, parseApiError } from "../../src/lib/errors";
import { type KeyValueStorage, SessionStore, parseExpiresIn, refreshDelay } from "../../src/lib/session";

class MemoryStorage implements KeyValueStorage {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
}

interface Call {
  readonly url: string;
  readonly method: string;
  readonly auth: string | null;
  readonly body: unknown;
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

function auth(access: string, refresh: string) {
  return { user: { id: "u1", email: "a@b.co" }, accessToken: access, refreshToken: refresh, expiresIn: 900 };
}

const expired = {
  code: 16,
  message: "token expired",
  details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "TOKEN_EXPIRED", domain: "cfd.v1" }],
};

function recordingFetch(handler: (call: Call) => Response): { fetcher: FetchLike; calls: Call[] } {
  const calls: Call[] = [];
  const fetcher: FetchLike = async (url, init) => {
    const headers = (init?.headers ?? {}) as Record<string, string>;
    const call: Call = {
      url,
      method: init?.method ?? "GET",
      auth: headers.Authorization ?? null,
      body: typeof init?.body === "string" ? JSON.parse(init.body) : undefined,
    };
    calls.push(call);
    return handler(call);
  };
  return { fetcher, calls };
}

describe("error parsing", () => {
  it("reads the reason and field violations of a google.rpc.Status body", () => {
    const error = parseApiError(400, {
      code: 3,
      message: "invalid",
      details: [
        { "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "VALIDATION_FAILED", domain: "cfd.v1" },
        {
          "@type": "type.googleapis.com/google.rpc.BadRequest",
          fieldViolations: [{ field: "take_profit", description: "must be above the bid" }],
        },
      ],
    });
    expect(error.code).toBe(3);
    expect(error.reason).toBe("VALIDATION_FAILED");
    expect(error.fieldError("takeProfit")).toBe("must be above the bid");
    expect(error.fieldError("stopLoss")).toBeNull();
  });

  it("puts the field's label before a description written to follow it", () => {
    expect(fieldSentence("Email", "is not a valid email address")).toBe("Email is not a valid email address");
    expect(fieldSentence("Email", "Use a real address")).toBe("Use a real address");
  });

  it("puts the server's violations under the form's fields they name", () => {
    const error = parseApiError(400, {
      code: 3,
      message: "invalid",
      details: [
        {
          "@type": "type.googleapis.com/google.rpc.BadRequest",
          fieldViolations: [
            { field: "volume_lots", description: "is not a multiple of the lot step" },
            { field: "stop_loss", description: "Stop loss on the wrong side" },
          ],
        },
      ],
    });
    expect(
      fieldErrorsOf(error, {
        size: ["volumeLots", "Lots"],
        stopLoss: ["stopLoss", "Stop loss"],
        takeProfit: ["takeProfit", "Take profit"],
      }),
    ).toEqual({ size: "Lots is not a multiple of the lot step", stopLoss: "Stop loss on the wrong side" });
    expect(fieldErrorsOf(error, { size: ["quantity", "Quantity"] })).toEqual({});
  });

  it("puts reasons into words and survives any body", () => {
    expect(parseApiError(400, { code: 9, details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "INSUFFICIENT_BALANCE" }] }).describe()).toBe(
      "Not enough free margin for this order",
    );
    expect(parseApiError(400, { details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "SOME_NEW_REASON" }] }).describe()).toBe("Some new reason");
    expect(parseApiError(502, "<html>").describe()).toBe("HTTP 502");
    expect(parseApiError(500, null).reason).toBeNull();
  });
});

describe("session timing", () => {
  it("reads expiresIn in each JSON spelling", () => {
    expect(parseExpiresIn(900)).toBe(900);
    expect(parseExpiresIn("900")).toBe(900);
    expect(parseExpiresIn("900s")).toBe(900);
    expect(parseExpiresIn("soon")).toBe(0);
  });

  it("refreshes a minute before expiry, or at half life for short tokens", () => {
    const base = { user: { id: "u", email: "e" }, accessToken: "a", refreshToken: "r" };
    expect(refreshDelay({ ...base, expiresAt: 900_000 }, 0)).toBe(840_000);
    expect(refreshDelay({ ...base, expiresAt: 60_000 }, 0)).toBe(30_000);
    expect(refreshDelay({ ...base, expiresAt: 0 }, 10)).toBe(0);
  });
});

describe("api client", () => {
  it("signs in, keeps the session in storage and sends the token", async () => {
    const storage = new MemoryStorage();
    const { fetcher, calls } = recordingFetch((call) =>
      call.url.endsWith("/v1/auth/signin") ? json(200, auth("A1", "R1")) : json(200, { balance: "5000" }),
    );
    const api = new ApiClient("", fetcher, new SessionStore(storage));
    await api.signin("a@b.co", "password1");
    const account = await api.getAccount();
    api.dispose();
    expect(account.balance).toBe("5000");
    expect(calls[0].auth).toBeNull();
    expect(calls[1].auth).toBe("Bearer A1");
    const reloaded = new SessionStore(storage);
    expect(reloaded.get()?.refreshToken).toBe("R1");
  });

  it("closes a position in full, in units or in lots", async () => {
    const storage = new MemoryStorage();
    const { fetcher, calls } = recordingFetch((call) =>
      call.url.endsWith("/v1/auth/signin") ? json(200, auth("A1", "R1")) : json(200, {}),
    );
    const api = new ApiClient("", fetcher, new SessionStore(storage));
    await api.signin("a@b.co", "password1");
    await api.closePosition("p1", undefined, "c1");
    await api.closePosition("p1", { quantity: "500" }, "c2");
    await api.closePosition("p1", { volumeLots: "0.5" }, "c3");
    api.dispose();
    expect(calls.slice(1).map((call) => [call.method, call.url, call.body])).toEqual([
      ["POST", "/v1/positions/p1:close", { clientOrderId: "c1" }],
      ["POST", "/v1/positions/p1:close", { quantity: "500", clientOrderId: "c2" }],
      ["POST", "/v1/positions/p1:close", { volumeLots: "0.5", clientOrderId: "c3" }],
    ]);
  });

  it("refreshes once on an expired token and retries the request", async () => {
    const storage = new MemoryStorage();
    let accessToken = "A1";
    const { fetcher, calls } = recordingFetch((call) => {
      if (call.url.endsWith("/v1/auth/signin")) return json(200, auth("A1", "R1"));
      if (call.url.endsWith("/v1/auth/refresh")) {
        accessToken = "A2";
        return json(200, auth("A2", "R2"));
      }
      return call.auth === `Bearer ${accessToken}` && accessToken === "A2" ? json(200, { positions: [] }) : json(401, expired);
    });
    const api = new ApiClient("", fetcher, new SessionStore(storage));
    await api.signin("a@b.co", "password1");
    const [first, second] = await Promise.all([api.listPositions(), api.listOrders().catch(() => null)]);
    api.dispose();
    expect(first).toEqual([]);
    expect(second).toEqual([]);
    expect(calls.filter((c) => c.url.endsWith("/v1/auth/refresh"))).toHaveLength(1);
    expect(calls.find((c) => c.url.endsWith("/v1/auth/refresh"))?.body).toEqual({ refreshToken: "R1" });
    expect(api.sessions.get()?.refreshToken).toBe("R2");
  });

  it("ends the session when the refresh is refused", async () => {
    const storage = new MemoryStorage();
    const { fetcher } = recordingFetch((call) => {
      if (call.url.endsWith("/v1/auth/signin")) return json(200, auth("A1", "R1"));
      return json(401, expired);
    });
    const api = new ApiClient("", fetcher, new SessionStore(storage));
    await api.signin("a@b.co", "password1");
    await expect(api.getAccount()).rejects.toBeInstanceOf(ApiError);
    api.dispose();
    expect(api.sessions.get()).toBeNull();
    expect(storage.items.size).toBe(0);
  });
});
