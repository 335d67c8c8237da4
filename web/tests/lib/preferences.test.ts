import { describe, expect, it } from "vitest";
import { loadOneClick, saveOneClick } from "../../src/lib/preferences";
import type { KeyValueStorage } from "../../src/lib/session";

function memoryStorage(): KeyValueStorage & { readonly items: Map<string, string> } {
  const items = new Map<string, string>();
  return {
    items,
    getItem: (key) => items.get(key) ?? null,
    setItem: (key, value) => void items.set(key, value),
    removeItem: (key) => void items.delete(key),
  };
}

describe("one-click trading preference", () => {
  it("is off until turned on, and remembered", () => {
    const storage = memoryStorage();
    expect(loadOneClick(storage)).toBe(false);
    saveOneClick(storage, true);
    expect(loadOneClick(storage)).toBe(true);
    saveOneClick(storage, false);
    expect(loadOneClick(storage)).toBe(false);
    expect(storage.items.size).toBe(0);
  });

  it("is off without storage", () => {
    expect(loadOneClick(null)).toBe(false);
    saveOneClick(null, true);
    expect(loadOneClick(null)).toBe(false);
  });
});
