/** Which price lines the chart draws for the open positions and pending orders of a symbol. */

import { Decimal } from "./decimal";
import { formatOrderType, formatPrice, formatQuantity, formatSide } from "./format";
import type { Order, Position } from "./types";

export type LineKind = "entry" | "takeProfit" | "stopLoss" | "trailing" | "liquidation" | "order";

/** The fields of a position that a drag on the chart may change. */
export type DraggableField = "takeProfit" | "stopLoss";

/** What a drag changes: a position's take profit or stop loss, or a pending order's trigger. */
export type LineDrag =
  | { readonly positionId: string; readonly field: DraggableField }
  | { readonly orderId: string; readonly field: "triggerPrice" };

export interface ChartLine {
  /** Stable across updates, so that a line is moved rather than redrawn. */
  readonly key: string;
  readonly kind: LineKind;
  /** The exact price, as the server sent it. */
  readonly price: string;
  readonly title: string;
  readonly color: string;
  readonly dashed: boolean;
  /** Set on the lines a drag may move: the position or order and the field it changes. */
  readonly drag?: LineDrag;
}

export const LINE_COLORS: Readonly<Record<LineKind, string>> = {
  entry: "#4c8dff",
  takeProfit: "#0ecb81",
  stopLoss: "#f6465d",
  trailing: "#f0b90b",
  liquidation: "#d946ef",
  order: "#9aa4b2",
};

const LINE_LABELS: Readonly<Record<Exclude<LineKind, "order">, string>> = {
  entry: "Entry",
  takeProfit: "TP",
  stopLoss: "SL",
  trailing: "Trail",
  liquidation: "Liq.",
};

function present(value: string | undefined): value is string {
  return value !== undefined && value !== "" && Decimal.tryParse(value) !== null;
}

function line(
  key: string,
  kind: LineKind,
  price: string,
  title: string,
  drag?: ChartLine["drag"],
): ChartLine {
  return {
    key,
    kind,
    price,
    title,
    color: LINE_COLORS[kind],
    dashed: kind !== "entry",
    ...(drag === undefined ? {} : { drag }),
  };
}

/** The lines of one position: entry, take profit, stop loss, trailing stop and liquidation. */
export function positionLines(position: Position): ChartLine[] {
  const side = formatSide(position.side);
  const size = formatQuantity(position.quantity);
  const lines = [line(`${position.id}:entry`, "entry", position.entryPrice, `${side} ${size}`)];
  const stops: readonly [LineKind, string | undefined][] = [
    ["takeProfit", position.takeProfit],
    ["stopLoss", position.stopLoss],
    ["trailing", position.trailingStopPrice],
    ["liquidation", position.liquidationPrice],
  ];
  for (const [kind, price] of stops) {
    if (!present(price) || kind === "entry" || kind === "order") continue;
    const drag =
      kind === "takeProfit" || kind === "stopLoss" ? { positionId: position.id, field: kind } : undefined;
    lines.push(line(`${position.id}:${kind}`, kind, price, `${LINE_LABELS[kind]} ${side} ${size}`, drag));
  }
  return lines;
}

/** The trigger line of a pending order; a drag moves the trigger price. */
export function orderLine(order: Order): ChartLine {
  const size =
    order.quantity !== undefined && order.quantity !== ""
      ? formatQuantity(order.quantity)
      : `${order.margin ?? ""} USD`;
  const title = `${formatSide(order.side)} ${formatOrderType(order.type).toLowerCase()} ${size}`;
  const drag = { orderId: order.id, field: "triggerPrice" } as const;
  return line(`${order.id}:order`, "order", order.triggerPrice, title, drag);
}

/** Every line of a symbol's open positions and pending orders. */
export function chartLines(
  symbol: string,
  positions: readonly Position[],
  orders: readonly Order[],
): ChartLine[] {
  const lines: ChartLine[] = [];
  for (const position of positions) {
    if (position.symbol === symbol) lines.push(...positionLines(position));
  }
  for (const order of orders) {
    if (order.symbol === symbol && present(order.triggerPrice)) lines.push(orderLine(order));
  }
  return lines;
}

/**
 * The draggable line nearest to a pointer at `y` pixels, within `tolerance` pixels; null when
 * none is. `toY` maps a price to its pixel row on the chart (null when off the scale).
 */
export function lineAt(
  lines: readonly ChartLine[],
  y: number,
  toY: (price: number) => number | null,
  tolerance: number,
): ChartLine | null {
  let best: ChartLine | null = null;
  let bestDistance = tolerance;
  for (const candidate of lines) {
    if (candidate.drag === undefined) continue;
    const row = toY(Number(candidate.price));
    if (row === null) continue;
    const distance = Math.abs(row - y);
    if (distance <= bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/**
 * The exact price nearest to a pointer's price on the chart, on the instrument's tick grid;
 * null when it is not a positive number. The float only says where the pointer is.
 */
export function snapToTick(value: number, tickSize: Decimal): Decimal | null {
  if (!Number.isFinite(value) || value <= 0) return null;
  const scale = tickSize.significantScale() + 3;
  const approximate = Decimal.parse(value.toFixed(scale));
  const half = tickSize.div(Decimal.fromInteger(2), scale + 1, "trunc");
  const snapped = approximate.add(half).roundToStep(tickSize, "floor");
  return snapped.isPositive() ? snapped : null;
}

/** "SL 63,500.00 → 63,250.00", for the confirmation of a drag. */
export function describeMove(label: string, from: string, to: Decimal, digits: number): string {
  return `${label} ${formatPrice(from, digits)} → ${formatPrice(to.toPlainString(), digits)}`;
}
