/** Trading preferences remembered in the browser's storage. */

import type { KeyValueStorage } from "./session";

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
