/** Words for account events, as shown in toasts. */

import { describeReason } from "./errors";
import { Decimal } from "./decimal";
import { formatExactMoney, formatMoney, formatOrderType, formatPrice, formatQuantity, formatSide } from "./format";
import type { AccountEvent, Position } from "./types";

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

/** A price as the server sent it, grouped ("64010.00" -> "64,010.00"). */
function price(value: string | undefined): string {
  return value === undefined ? "?" : formatPrice(value, Decimal.tryParse(value)?.scale ?? 0);
}

/**
 * The margin added to `position` by the balance change just before its update, if that is
 * what the pair of events records (both carry the same sequence number).
 */
function addedMargin(previous: AccountEvent | undefined, event: AccountEvent, position: Position) {
  const change = previous?.balanceChange;
  if (
    previous === undefined ||
    previous.type !== "EVENT_TYPE_BALANCE_CHANGED" ||
    previous.sequence !== event.sequence ||
    change?.kind !== "BALANCE_CHANGE_KIND_MARGIN_RESERVED" ||
    change.positionId !== position.id
  ) {
    return null;
  }
  return Decimal.tryParse(change.amount)?.abs() ?? null;
}

/**
 * Describe an event for a toast; null for events that need none (their effect is shown).
 * `previous` is the event received just before, which some events complete.
 */
export function describeEvent(event: AccountEvent, previous?: AccountEvent): EventMessage | null {
  const position = event.position;
  const order = event.order;
  switch (event.type) {
    case "EVENT_TYPE_POSITION_OPENED":
      if (position === undefined) return null;
      return {
        title: "Position opened",
        body: `${formatSide(position.side)} ${formatQuantity(position.quantity)} ${position.symbol} at ${price(position.entryPrice)}`,
        tone: "info",
      };
    case "EVENT_TYPE_POSITION_MODIFIED": {
      if (position === undefined) return null;
      const added = addedMargin(previous, event, position);
      if (added !== null) {
        return {
          title: "Margin added",
          body:
            `+${formatMoney(added.toString())} USD to ${formatSide(position.side)} ` +
            `${formatQuantity(position.quantity)} ${position.symbol}: margin ` +
            `${formatMoney(position.margin)} USD, liquidation at ${price(position.liquidationPrice)}`,
          tone: "info",
        };
      }
      return {
        title: "Position updated",
        body: `${formatSide(position.side)} ${formatQuantity(position.quantity)} ${position.symbol}`,
        tone: "info",
      };
    }
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
        body: `${formatSide(position.side)} ${formatQuantity(position.quantity)} ${position.symbol} at ${price(position.closePrice)}${pnlText(position.realizedPnl)}`,
        tone: reason === "CLOSE_REASON_USER" || reason === undefined ? "info" : pnlNegative ? "warning" : "success",
      };
    }
    case "EVENT_TYPE_POSITION_LIQUIDATED":
      if (position === undefined) return null;
      return {
        title: "Position liquidated",
        body: `${formatSide(position.side)} ${formatQuantity(position.quantity)} ${position.symbol} at ${price(position.closePrice)}${pnlText(position.realizedPnl)}`,
        tone: "danger",
      };
    case "EVENT_TYPE_ORDER_PLACED":
      if (order === undefined) return null;
      return {
        title: "Order placed",
        body: `${formatSide(order.side)} ${formatOrderType(order.type).toLowerCase()} ${order.symbol} at ${price(order.triggerPrice)}`,
        tone: "info",
      };
    case "EVENT_TYPE_ORDER_FILLED":
      if (order === undefined) return null;
      return {
        title: "Order filled",
        body: `${formatSide(order.side)} ${formatOrderType(order.type).toLowerCase()} ${order.symbol} at ${price(order.triggerPrice)}`,
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
        body: `${formatSide(order.side)} ${formatOrderType(order.type).toLowerCase()} ${order.symbol} at ${price(order.triggerPrice)}`,
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
      if (change?.kind === "BALANCE_CHANGE_KIND_TRANSFER") {
        // A negative amount left the CFD balance for the spot wallet.
        const toSpot = (change.amount ?? "").startsWith("-");
        const moved = Decimal.tryParse(change.amount)?.abs().toString();
        return {
          title: "Transfer",
          body: `${formatMoney(moved)} USD to the ${toSpot ? "spot wallet" : "CFD balance"}`,
          tone: "info",
        };
      }
      // Margin moves and settlements accompany a position event already shown.
      if (change === undefined || change.kind !== "BALANCE_CHANGE_KIND_DEPOSIT") return null;
      return { title: "Deposit", body: `+${formatMoney(change.amount)} USD`, tone: "success" };
    }
    case "EVENT_TYPE_SWAP_CHARGED": {
      const charge = event.swapCharge;
      if (position === undefined || charge === undefined) return null;
      const credited = !(charge.amount ?? "").startsWith("-");
      const times = (charge.multiplier ?? 1) > 1 ? ` (×${charge.multiplier})` : "";
      return {
        title: credited ? "Swap credited" : "Swap charged",
        body:
          `${credited ? "+" : ""}${formatExactMoney(charge.amount)} USD on ${formatSide(position.side)} ` +
          `${formatQuantity(position.quantity)} ${position.symbol}${times}, rollover ${charge.rolloverDate ?? "?"}`,
        tone: "info",
      };
    }
    case "EVENT_TYPE_SPOT_FILL": {
      const fill = event.spotFill;
      if (fill === undefined) return null;
      const role = fill.liquidity === "LIQUIDITY_MAKER" ? "maker" : "taker";
      return {
        title: "Spot fill",
        body:
          `${formatSide(fill.side)} ${formatQuantity(fill.quantity)} ${fill.market} at ` +
          `${price(fill.price)}, fee ${formatExactMoney(fill.fee ?? "0")} USD (${role})`,
        tone: "success",
      };
    }
    case "EVENT_TYPE_SPOT_ORDER_CANCELLED": {
      const spot = event.spotOrder;
      if (spot === undefined) return null;
      return {
        title: "Spot order cancelled",
        body: `${formatSide(spot.side)} ${formatQuantity(spot.quantity)} ${spot.market} at ${price(spot.price)}`,
        tone: "info",
      };
    }
    default:
      return null;
  }
}
