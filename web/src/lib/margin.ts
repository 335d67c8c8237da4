/** How worried the account bar should look about the margin level. */

import { Decimal } from "./decimal";

/** Below this margin level (percent) the account is warned, as a margin call would. */
export const MARGIN_WARNING_LEVEL = Decimal.fromInteger(100);
/** Below this margin level (percent) positions are close to being liquidated. */
export const MARGIN_DANGER_LEVEL = Decimal.fromInteger(50);

export type MarginAlert = "none" | "warning" | "danger";

/** The alert of a margin level in percent; none without positions (no level). */
export function marginAlert(level: string | undefined | null): MarginAlert {
  const value = Decimal.tryParse(level);
  if (value === null) return "none";
  if (value.lt(MARGIN_DANGER_LEVEL)) return "danger";
  if (value.lt(MARGIN_WARNING_LEVEL)) return "warning";
  return "none";
}

const MARGIN_MODES: Readonly<Record<string, string>> = {
  MARGIN_MODE_ISOLATED: "Isolated",
  MARGIN_MODE_CROSS: "Cross",
};
const POSITION_MODES: Readonly<Record<string, string>> = {
  POSITION_MODE_HEDGING: "Hedging",
  POSITION_MODE_NETTING: "Netting",
};

/**
 * The account's margin and position modes, e.g. "Cross · Netting"; a mode the account does not
 * report (a server older than the mode) is the one every account had then: isolated, hedging.
 */
export function accountModes(
  account: { readonly marginMode?: string; readonly positionMode?: string } | null,
): string {
  if (account === null) return "—";
  const margin = MARGIN_MODES[account.marginMode ?? ""] ?? "Isolated";
  const position = POSITION_MODES[account.positionMode ?? ""] ?? "Hedging";
  return `${margin} · ${position}`;
}
