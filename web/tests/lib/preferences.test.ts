import { describe, expect, it } from "vitest";
import { loadDialogSizeMode, loadOneClick, loadSizeMode, saveOneClick, saveSizeMode } from "../../src/lib/preferences";
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

describe("order size mode preference", () => {
  it("is units until changed, and remembers lots or a margin", () => {
    const storage = memoryStorage();
    expect(loadSizeMode(storage)).toBe("quantity");
    saveSizeMode(storage, "lots");
    expect(loadSizeMode(storage)).toBe("lots");
    saveSizeMode(storage, "margin");
    expect(loadSizeMode(storage)).toBe("margin");
  });

  it("ignores a value it does not know", () => {
    const storage = memoryStorage();
    storage.setItem("cfd.sizeMode", "bushels");
    expect(loadSizeMode(storage)).toBe("quantity");
    expect(loadSizeMode(null)).toBe("quantity");
  });

  it("has the dialogs take lots when the ticket sizes in lots, else units", () => {
    const storage = memoryStorage();
    expect(loadDialogSizeMode(storage)).toBe("quantity");
    saveSizeMode(storage, "lots");
    expect(loadDialogSizeMode(storage)).toBe("lots");
    saveSizeMode(storage, "margin");
    expect(loadDialogSizeMode(storage)).toBe("quantity");
    expect(loadDialogSizeMode(null)).toBe("quantity");
  });
});
