/** Trading preferences remembered in the browser's storage. */

import type { KeyValueStorage } from "./session";
import type { QuantitySizeMode, SizeMode } from "./trading";

const ONE_CLICK_KEY = "cfd.oneClick";

/** Whether one-click trading is on: off unless the user turned it on. */
export function loadOneClick(storage: KeyValueStorage | null): boolean {
  return storage?.getItem(ONE_CLICK_KEY) === "on";
}

export function saveOneClick(storage: KeyValueStorage | null, on: boolean): void {
  if (on) {
    storage?.setItem(ONE_CLICK_KEY, "on");
  } else {
    storage?.removeItem(ONE_CLICK_KEY);
  }
}

const SIZE_MODE_KEY = "cfd.sizeMode";
const SIZE_MODES: readonly SizeMode[] = ["quantity", "lots", "margin"];

/** How the order ticket sizes orders: units unless the user chose lots or a margin. */
export function loadSizeMode(storage: KeyValueStorage | null): SizeMode {
  const saved = storage?.getItem(SIZE_MODE_KEY);
  return SIZE_MODES.find((mode) => mode === saved) ?? "quantity";
}

export function saveSizeMode(storage: KeyValueStorage | null, mode: SizeMode): void {
  storage?.setItem(SIZE_MODE_KEY, mode);
}

/**
 * How the close and order-edit dialogs take a size: in lots when the ticket sizes in lots,
 * else in units (a margin names no quantity to close or to resize by).
 */
export function loadDialogSizeMode(storage: KeyValueStorage | null): QuantitySizeMode {
  return loadSizeMode(storage) === "lots" ? "lots" : "quantity";
}
