/**
 * The spot order arithmetic of API.md "Spot exchange", exactly as the engine computes it:
 * fees per fill rounded up to 1e-6 USD, what a buy limit locks, and what an order costs or
 * brings with its fee before it is sent.
 */

import type { Level } from "./book";
import { Decimal } from "./decimal";
import { formatPrice, formatQuantity } from "./format";
import { MONEY_SCALE, type Side } from "./trading";
import type { Market, PlaceSpotOrderResponse } from "./types";

const BPS_PER_UNIT = Decimal.fromInteger(10_000);

/** The trading parameters of one market, parsed from `GET /v1/markets`. */
export interface MarketSpec {
  readonly name: string;
  readonly baseAsset: string;
  readonly quoteAsset: string;
  readonly tickSize: Decimal;
  readonly lotStep: Decimal;
  readonly takerFeeBps: number;
  readonly makerFeeBps: number;
  /** Fraction digits of the tick size, for price display. */
  readonly priceDigits: number;
}

function feeRate(value: number | undefined): number | null {
  if (value === undefined) return 0; // Protobuf JSON omits a zero rate.
  return Number.isInteger(value) && value >= 0 && value < 10_000 ? value : null;
}

/** Parse a market's decimal fields; null when the server sent something unusable. */
export function toMarketSpec(market: Market): MarketSpec | null {
  const tickSize = Decimal.tryParse(market.tickSize);
  const lotStep = Decimal.tryParse(market.lotStep);
  const takerFeeBps = feeRate(market.takerFeeBps);
  const makerFeeBps = feeRate(market.makerFeeBps);
  if (
    tickSize === null ||
    lotStep === null ||
    !tickSize.isPositive() ||
    !lotStep.isPositive() ||
    takerFeeBps === null ||
    makerFeeBps === null
  ) {
    return null;
  }
  return {
    name: market.name,
    baseAsset: market.baseAsset,
    quoteAsset: market.quoteAsset,
    tickSize,
    lotStep,
    takerFeeBps,
    makerFeeBps,
    priceDigits: tickSize.significantScale(),
  };
}

/** The fee on a quote amount: quote x bps / 10000, rounded up to 1e-6 USD. */
export function feeOf(quote: Decimal, bps: number): Decimal {
  return quote.mul(Decimal.fromInteger(bps)).div(BPS_PER_UNIT, MONEY_SCALE, "ceil");
}

/** What a buy limit locks: price x quantity plus the taker fee on it. */
export function buyLimitLock(price: Decimal, quantity: Decimal, takerFeeBps: number): Decimal {
  const quote = price.mul(quantity);
  return quote.add(feeOf(quote, takerFeeBps));
}

/** A fee rate in basis points as a percentage ("10" -> "0.1%"). */
export function formatFeeRate(bps: number): string {
  return `${Decimal.of(BigInt(bps), 2).toPlainString()}%`;
}

/** The price groupings the ladder offers: the tick, then ten, a hundred, a thousand ticks. */
export function groupSteps(tickSize: Decimal): Decimal[] {
  return [1, 10, 100, 1000].map((times) => tickSize.mul(Decimal.fromInteger(times)));
}

export type SpotExecution = "limit" | "market";

/** How the size is given: a quantity of the base asset or an amount of USD. */
export type SpotSizeMode = "quantity" | "quote";

export interface SpotPreviewInput {
  readonly spec: MarketSpec;
  readonly side: Side;
  readonly execution: SpotExecution;
  /** The limit price as typed (limit orders). */
  readonly price: string;
  readonly sizeMode: SpotSizeMode;
  /** The quantity or the USD amount, as typed. */
  readonly amount: string;
  readonly postOnly: boolean;
  /** The opposite side of the book, best first (market orders walk it). */
  readonly opposite: readonly Level[];
}

export interface SpotPreview {
  /** Base quantity: ordered (limit) or that the book fills now (market). */
  readonly quantity: Decimal;
  /** Price x quantity, summed over the levels a market order takes. */
  readonly value: Decimal;
  readonly fee: Decimal;
  /** A buy pays value + fee; a sell receives value - fee. */
  readonly total: Decimal;
  readonly averagePrice: Decimal | null;
  /** USD (buy limit) or base asset (sell) the order holds; zero for a market buy. */
  readonly lock: Decimal;
  /** Whether the figures depend on the book (market orders). */
  readonly estimated: boolean;
  /** Whether the book holds less than the order asks for (market orders). */
  readonly shortfall: boolean;
  /** The size fields to send. */
  readonly size: { readonly quantity: string } | { readonly quoteQuantity: string };
}

export type SpotPreviewResult =
  | { readonly ok: true; readonly preview: SpotPreview }
  | { readonly ok: false; readonly field: "price" | "amount"; readonly message: string };

function failure(field: "price" | "amount", message: string): SpotPreviewResult {
  return { ok: false, field, message };
}

/** Parse the typed size: a positive decimal with the precision its mode allows. */
function parseAmount(input: SpotPreviewInput): Decimal | string {
  const amount = Decimal.tryParse(input.amount);
  if (amount === null) return "Enter a number";
  if (!amount.isPositive()) return "Must be greater than zero";
  if (input.sizeMode === "quantity" && !amount.isMultipleOf(input.spec.lotStep)) {
    return `Quantity must be a multiple of ${input.spec.lotStep.toPlainString()}`;
  }
  if (input.sizeMode === "quote" && amount.significantScale() > MONEY_SCALE) {
    return `At most ${MONEY_SCALE} decimals`;
  }
  return amount;
}

function limitPreview(input: SpotPreviewInput, amount: Decimal): SpotPreviewResult {
  const { spec, side } = input;
  const price = Decimal.tryParse(input.price);
  if (price === null) return failure("price", "Enter a price");
  if (!price.isPositive()) return failure("price", "Must be greater than zero");
  if (!price.isMultipleOf(spec.tickSize)) {
    return failure("price", `Must be a multiple of ${spec.tickSize.toPlainString()}`);
  }
  const quantity =
    input.sizeMode === "quantity"
      ? amount
      : amount.div(price.mul(spec.lotStep), 0, "floor").mul(spec.lotStep);
  if (quantity.isZero()) {
    return failure("amount", "Less than one lot at this price");
  }
  const value = price.mul(quantity);
  // A post-only order can only rest, so it pays the maker fee; any other may take.
  const fee = feeOf(value, input.postOnly ? spec.makerFeeBps : spec.takerFeeBps);
  const buy = side === "SIDE_BUY";
  return {
    ok: true,
    preview: {
      quantity,
      value,
      fee,
      total: buy ? value.add(fee) : value.sub(fee),
      averagePrice: price,
      lock: buy ? buyLimitLock(price, quantity, spec.takerFeeBps) : quantity,
      estimated: false,
      shortfall: false,
      size: { quantity: quantity.toPlainString() },
    },
  };
}

/** Walk the book as a market order would: by quantity, or by USD to spend (fees on top). */
function marketPreview(input: SpotPreviewInput, amount: Decimal): SpotPreviewResult {
  const { spec, side, opposite } = input;
  const byQuote = input.sizeMode === "quote";
  if (byQuote && side === "SIDE_SELL") {
    return failure("amount", "A market sell is sized by quantity");
  }
  if (opposite.length === 0) {
    return failure("amount", "No orders on the other side of the book");
  }
  let quantity = Decimal.zero();
  let value = Decimal.zero();
  let fee = Decimal.zero();
  let left = amount;
  // Whether the order took every level whole: only then can the book fall short of it.
  let exhausted = true;
  for (const level of opposite) {
    const affordable = byQuote
      ? left.div(level.price.mul(spec.lotStep), 0, "floor").mul(spec.lotStep)
      : left;
    const take = level.quantity.lt(affordable) ? level.quantity : affordable;
    if (take.lt(level.quantity)) exhausted = false;
    if (take.isZero()) break;
    const quote = level.price.mul(take);
    quantity = quantity.add(take);
    value = value.add(quote);
    fee = fee.add(feeOf(quote, spec.takerFeeBps));
    left = left.sub(byQuote ? quote : take);
  }
  if (quantity.isZero()) {
    return failure("amount", "Less than one lot at the best price");
  }
  // By quote, what is left below one lot at the last price is rounding, not a shortfall.
  const worst = opposite[opposite.length - 1].price;
  const shortfall =
    exhausted && (byQuote ? left.gte(worst.mul(spec.lotStep)) : left.isPositive());
  const buy = side === "SIDE_BUY";
  return {
    ok: true,
    preview: {
      quantity,
      value,
      fee,
      total: buy ? value.add(fee) : value.sub(fee),
      averagePrice: value.div(quantity, spec.priceDigits + 2, "halfUp"),
      lock: buy ? Decimal.zero() : quantity,
      estimated: true,
      shortfall,
      size: byQuote
        ? { quoteQuantity: amount.toPlainString() }
        : { quantity: amount.toPlainString() },
    },
  };
}

/** Compute what an order would cost (buy) or bring (sell) with its fee. */
export function previewSpotOrder(input: SpotPreviewInput): SpotPreviewResult {
  const amount = parseAmount(input);
  if (typeof amount === "string") return failure("amount", amount);
  return input.execution === "limit" ? limitPreview(input, amount) : marketPreview(input, amount);
}

/** Check a transfer amount against what its source holds; null when it may be sent. */
export function transferAmountError(text: string, source: Decimal | null): string | null {
  const amount = Decimal.tryParse(text);
  if (amount === null) return "Enter an amount";
  if (!amount.isPositive()) return "Must be greater than zero";
  if (amount.significantScale() > MONEY_SCALE) return `At most ${MONEY_SCALE} decimals`;
  if (source !== null && amount.gt(source)) return "More than is available";
  return null;
}

/** What an order did, in words, from the server's answer. */
export function describePlacement(response: PlaceSpotOrderResponse, spec: MarketSpec): string {
  const order = response.order;
  const filled = formatQuantity(order.filledQuantity ?? "0");
  const average =
    order.averagePrice === undefined || order.averagePrice === ""
      ? ""
      : ` at ${formatPrice(order.averagePrice, spec.priceDigits)} on average`;
  switch (order.status) {
    case "SPOT_ORDER_STATUS_OPEN":
      return `Order placed: ${formatQuantity(order.quantity)} ${spec.baseAsset} at ${formatPrice(order.price, spec.priceDigits)}`;
    case "SPOT_ORDER_STATUS_PARTIALLY_FILLED":
      return `Filled ${filled} ${spec.baseAsset}${average}; the rest rests in the book`;
    case "SPOT_ORDER_STATUS_FILLED":
      return `Filled ${filled} ${spec.baseAsset}${average}`;
    case "SPOT_ORDER_STATUS_EXPIRED":
      return `Filled ${filled} ${spec.baseAsset}${average}; the rest expired`;
    default:
      return "Order not placed";
  }
}
