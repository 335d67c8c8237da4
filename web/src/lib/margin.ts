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
