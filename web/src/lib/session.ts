/** The signed-in session: tokens kept across reloads and refreshed before they expire. */

import type { AuthResponse, User } from "./types";

export interface Session {
  readonly user: User;
  readonly accessToken: string;
  readonly refreshToken: string;
  /** When the access token expires, in milliseconds since the epoch. */
  readonly expiresAt: number;
}

export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

const STORAGE_KEY = "cfd.session";

/** Refresh this long before the access token expires (or at half its life if shorter). */
const REFRESH_MARGIN_MS = 60_000;

/** Read `expiresIn` in any of its JSON spellings: 900, "900" or a Duration "900s". */
export function parseExpiresIn(value: unknown): number {
  if (typeof value === "number" && Number.isFinite(value)) {
    return value;
  }
  if (typeof value === "string") {
    const match = /^(\d+)(?:\.\d+)?s?$/.exec(value.trim());
    if (match !== null) {
      return Number(match[1]);
    }
  }
  return 0;
}

/** Turn an auth answer into a session, stamping its expiry from `now`. */
export function sessionFromAuth(response: AuthResponse, now: number): Session {
  return {
    user: response.user,
    accessToken: response.accessToken,
    refreshToken: response.refreshToken,
    expiresAt: now + parseExpiresIn(response.expiresIn) * 1000,
  };
}

/** How long to wait before refreshing a session, in milliseconds. */
export function refreshDelay(session: Session, now: number): number {
  const remaining = session.expiresAt - now;
  const margin = Math.min(REFRESH_MARGIN_MS, remaining / 2);
  return Math.max(0, remaining - margin);
}

function isSession(value: unknown): value is Session {
  if (typeof value !== "object" || value === null) {
    return false;
  }
  const record = value as Record<string, unknown>;
  return (
    typeof record.accessToken === "string" &&
    typeof record.refreshToken === "string" &&
    typeof record.expiresAt === "number" &&
    typeof record.user === "object" &&
    record.user !== null
  );
}

type Listener = (session: Session | null) => void;

/** Holds the current session, persists it, and tells listeners when it changes. */
export class SessionStore {
  private current: Session | null;
  private readonly listeners = new Set<Listener>();
  private readonly storage: KeyValueStorage | null;

  constructor(storage: KeyValueStorage | null) {
    this.storage = storage;
    this.current = SessionStore.load(storage);
  }

  private static load(storage: KeyValueStorage | null): Session | null {
    if (storage === null) {
      return null;
    }
    const text = storage.getItem(STORAGE_KEY);
    if (text === null) {
      return null;
    }
    try {
      const parsed: unknown = JSON.parse(text);
      return isSession(parsed) ? parsed : null;
    } catch {
      return null;
    }
  }

  get(): Session | null {
    return this.current;
  }

  set(session: Session | null): void {
    this.current = session;
    if (this.storage !== null) {
      if (session === null) {
        this.storage.removeItem(STORAGE_KEY);
      } else {
        this.storage.setItem(STORAGE_KEY, JSON.stringify(session));
      }
    }
    for (const listener of this.listeners) {
      listener(session);
    }
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }
}
