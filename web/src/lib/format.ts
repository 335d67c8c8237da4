/** Display formatting of decimal strings: exact, never through floating point. */

import { Decimal, groupThousands } from "./decimal";

export const DASH = "—";

/** Format money to the cent, halves away from zero ("1234.565" -> "1,234.57"). */
export function formatMoney(value: string | undefined | null): string {
  const decimal = Decimal.tryParse(value);
  if (decimal === null) {
    return DASH;
  }
  return groupThousands(decimal.rescale(2, "halfUp").toString());
}

/** Format money exactly with at least two fraction digits ("1234.5" -> "1,234.50"), for hovers. */
export function formatExactMoney(value: string | undefined | null): string {
  const decimal = Decimal.tryParse(value);
  if (decimal === null) {
    return DASH;
  }
  const digits = Math.max(2, decimal.significantScale());
  return groupThousands(decimal.rescale(digits, "trunc").toString());
}

/** Format a percentage with two decimals, rounded toward zero ("3127.965942" -> "3,127.96%"). */
export function formatPercent(value: string | undefined | null): string {
  const decimal = Decimal.tryParse(value);
  if (decimal === null) {
    return DASH;
  }
  return `${groupThousands(decimal.rescale(2, "trunc").toString())}%`;
}

/** Format a signed amount to the cent with an explicit plus sign for gains. */
export function formatSignedMoney(value: string | undefined | null): string {
  return signed(value, formatMoney(value));
}

/** The exact signed amount, for hovers. */
export function formatExactSignedMoney(value: string | undefined | null): string {
  return signed(value, formatExactMoney(value));
}

function signed(value: string | undefined | null, text: string): string {
  return Decimal.tryParse(value)?.isPositive() === true ? `+${text}` : text;
}

/** Format a price with the instrument's tick precision (padding, never rounding digits away). */
export function formatPrice(value: string | undefined | null, digits: number): string {
  const decimal = Decimal.tryParse(value);
  if (decimal === null) {
    return DASH;
  }
  const scale = Math.max(digits, decimal.significantScale());
  return groupThousands(decimal.rescale(scale, "trunc").toString());
}

/** Format a quantity exactly, grouped, without trailing zeros ("1200.50" -> "1,200.5"). */
export function formatQuantity(value: string | undefined | null): string {
  const decimal = Decimal.tryParse(value);
  return decimal === null ? DASH : groupThousands(decimal.toPlainString());
}

/** Percentage change from `from` to `to`, two decimals, rounded toward zero. */
export function percentChange(from: Decimal, to: Decimal): Decimal | null {
  if (from.isZero()) {
    return null;
  }
  return to.sub(from).mul(Decimal.fromInteger(100)).div(from, 2, "trunc");
}

/** Sign of a decimal string: -1, 0 or 1 (0 when it is not a number). */
export function signOf(value: string | undefined | null): -1 | 0 | 1 {
  const decimal = Decimal.tryParse(value);
  if (decimal === null) {
    return 0;
  }
  return decimal.compare(Decimal.zero());
}

/** A short local time for tables ("14:03:27" today, else the date too). */
export function formatTime(value: string | undefined): string {
  if (value === undefined) {
    return DASH;
  }
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) {
    return DASH;
  }
  const sameDay = date.toDateString() === new Date().toDateString();
  const time = date.toLocaleTimeString(undefined, { hour12: false });
  return sameDay ? time : `${date.toLocaleDateString()} ${time}`;
}

const CLOSE_REASONS: Readonly<Record<string, string>> = {
  CLOSE_REASON_USER: "Closed",
  CLOSE_REASON_TAKE_PROFIT: "Take profit",
  CLOSE_REASON_STOP_LOSS: "Stop loss",
  CLOSE_REASON_TRAILING_STOP: "Trailing stop",
  CLOSE_REASON_LIQUIDATION: "Liquidation",
};

export function formatCloseReason(reason: string | undefined): string {
  return reason === undefined ? DASH : (CLOSE_REASONS[reason] ?? reason);
}

export function formatSide(side: string): string {
  return side === "SIDE_BUY" ? "Buy" : side === "SIDE_SELL" ? "Sell" : side;
}

export function formatOrderType(type: string): string {
  return type === "ORDER_TYPE_LIMIT" ? "Limit" : type === "ORDER_TYPE_STOP" ? "Stop" : type;
}
