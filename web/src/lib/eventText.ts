/** Words for account events, as shown in toasts. */

import { describeReason } from "./errors";
import { formatMoney, formatOrderType, formatQuantity, formatSide } from "./format";
import type { AccountEvent } from "./types";

export interface EventMessage {
  readonly title: string;
  readonly body: string;
  readonly tone: "info" | "success" | "warning" | "danger";
}

function pnlText(value: string | undefined): string {
  if (value === undefined || value === "") {
    return "";
  }
  const sign = value.startsWith("-") ? "" : "+";
  return `, PnL ${sign}${formatMoney(value)} USD`;
}

/** Describe an event for a toast; null for events that need none (their effect is shown). */
export function describeEvent(event: AccountEvent): EventMessage | null {
  const position = event.position;
  const order = event.order;
  switch (event.type) {
    case "EVENT_TYPE_POSITION_OPENED":
      if (position === undefined) return null;
      return {
        title: "Position opened",
        body: `${formatSide(position.side)} ${formatQuantity(position.quantity)} ${position.symbol} at ${position.entryPrice}`,
        tone: "info",
      };
    case "EVENT_TYPE_POSITION_MODIFIED":
      if (position === undefined) return null;
      return {
        title: "Position updated",
        body: `${formatSide(position.side)} ${formatQuantity(position.quantity)} ${position.symbol}`,
        tone: "info",
      };
    case "EVENT_TYPE_POSITION_CLOSED": {
      if (position === undefined) return null;
      const reason = position.closeReason;
      const title =
        reason === "CLOSE_REASON_TAKE_PROFIT"
          ? "Take profit hit"
          : reason === "CLOSE_REASON_STOP_LOSS"
            ? "Stop loss hit"
            : reason === "CLOSE_REASON_TRAILING_STOP"
              ? "Trailing stop hit"
              : "Position closed";
      const pnlNegative = (position.realizedPnl ?? "").startsWith("-");
      return {
        title,
        body: `${formatSide(position.side)} ${formatQuantity(position.quantity)} ${position.symbol} at ${position.closePrice ?? "?"}${pnlText(position.realizedPnl)}`,
        tone: reason === "CLOSE_REASON_USER" || reason === undefined ? "info" : pnlNegative ? "warning" : "success",
      };
    }
    case "EVENT_TYPE_POSITION_LIQUIDATED":
      if (position === undefined) return null;
      return {
        title: "Position liquidated",
        body: `${formatSide(position.side)} ${formatQuantity(position.quantity)} ${position.symbol} at ${position.closePrice ?? "?"}${pnlText(position.realizedPnl)}`,
        tone: "danger",
      };
    case "EVENT_TYPE_ORDER_PLACED":
      if (order === undefined) return null;
      return {
        title: "Order placed",
        body: `${formatSide(order.side)} ${formatOrderType(order.type).toLowerCase()} ${order.symbol} at ${order.triggerPrice}`,
        tone: "info",
      };
    case "EVENT_TYPE_ORDER_FILLED":
      if (order === undefined) return null;
      return {
        title: "Order filled",
        body: `${formatSide(order.side)} ${formatOrderType(order.type).toLowerCase()} ${order.symbol} at ${order.triggerPrice}`,
        tone: "success",
      };
    case "EVENT_TYPE_ORDER_CANCELLED":
      if (order === undefined) return null;
      return {
        title: "Order cancelled",
        body: `${formatSide(order.side)} ${formatOrderType(order.type).toLowerCase()} ${order.symbol}`,
        tone: "info",
      };
    case "EVENT_TYPE_ORDER_EXPIRED":
      if (order === undefined) return null;
      return {
        title: "Order expired",
        body: `${formatSide(order.side)} ${formatOrderType(order.type).toLowerCase()} ${order.symbol} at ${order.triggerPrice}`,
        tone: "warning",
      };
    case "EVENT_TYPE_ORDER_REJECTED":
      if (order === undefined) return null;
      return {
        title: "Order rejected",
        body: `${order.symbol}: ${describeReason(order.rejectReason, "rejected")}`,
        tone: "danger",
      };
    case "EVENT_TYPE_BALANCE_CHANGED": {
      const change = event.balanceChange;
      // Margin moves and settlements accompany a position event already shown.
      if (change === undefined || change.kind !== "BALANCE_CHANGE_KIND_DEPOSIT") return null;
      return { title: "Deposit", body: `+${formatMoney(change.amount)} USD`, tone: "success" };
    }
    default:
      return null;
  }
}
