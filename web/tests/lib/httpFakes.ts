/** An API client over a fake server that answers each path from a table, recording calls. */

import { ApiClient, type FetchLike } from "../../src/lib/api";
import { type KeyValueStorage, SessionStore } from "../../src/lib/session";

export class MemoryStorage implements KeyValueStorage {
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

export interface Call {
  readonly url: string;
  readonly method: string;
  readonly auth: string | null;
  readonly body: unknown;
}

export function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

/** A client signed in as "u1" whose server answers each path from `replies`. */
export function client(replies: Record<string, () => Response>): { api: ApiClient; calls: Call[] } {
  const calls: Call[] = [];
  const fetcher: FetchLike = async (url, init) => {
    const headers = (init?.headers ?? {}) as Record<string, string>;
    calls.push({
      url,
      method: init?.method ?? "GET",
      auth: headers.Authorization ?? null,
      body: typeof init?.body === "string" ? JSON.parse(init.body) : undefined,
    });
    const path = url.replace("https://api.test", "");
    const reply = replies[path];
    return reply === undefined ? json(404, { code: 5, message: "no route" }) : reply();
  };
  const sessions = new SessionStore(new MemoryStorage());
  sessions.set({
    user: { id: "u1", email: "a@b.co" },
    accessToken: "access-1",
    refreshToken: "refresh-1",
    expiresAt: Date.now() + 900_000,
  });
  return { api: new ApiClient("https://api.test", fetcher, sessions), calls };
}
