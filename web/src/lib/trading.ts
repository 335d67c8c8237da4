/**
 * The order preview arithmetic of API.md "Trading semantics", computed exactly as the engine
 * does: quantity from margin, margin charged and liquidation price.
 */

import { Decimal } from "./decimal";

/** USD amounts are exact to 1e-6. */
export const MONEY_SCALE = 6;

export type Side = "SIDE_BUY" | "SIDE_SELL";

/** The trading parameters of one instrument, parsed from `GET /v1/instruments`. */
export interface InstrumentSpec {
  readonly symbol: string;
  readonly tickSize: Decimal;
  readonly lotStep: Decimal;
  readonly minQuantity: Decimal;
  readonly maxLeverage: number;
  readonly maintenanceMarginRate: Decimal;
  /** Units of the base currency in one lot (a power of ten). */
  readonly contractSize: Decimal;
}

/** How the size of an order is given: a quantity of the instrument, lots of it or a USD margin. */
export type SizeMode = "quantity" | "lots" | "margin";

export interface PreviewInput {
  readonly spec: InstrumentSpec;
  readonly side: Side;
  /** The price the order is expected to fill at: the ask for a buy, the bid for a sell. */
  readonly price: Decimal;
  readonly leverage: number;
  readonly sizeMode: SizeMode;
  /** The quantity, the lots or the margin, as typed. */
  readonly amount: string;
}

export interface Preview {
  readonly quantity: Decimal;
  readonly lots: Decimal;
  readonly notional: Decimal;
  readonly margin: Decimal;
  readonly maintenance: Decimal;
  readonly liquidationPrice: Decimal;
}

export type PreviewResult =
  | { readonly ok: true; readonly preview: Preview }
  | { readonly ok: false; readonly field: "amount" | "leverage" | "price"; readonly message: string };

/** Quantity bought by a margin at a leverage and price: floor to the lot step. */
export function quantityFromMargin(
  margin: Decimal,
  leverage: number,
  price: Decimal,
  lotStep: Decimal,
): Decimal {
  const exposure = margin.mul(Decimal.fromInteger(leverage));
  const lots = exposure.div(price.mul(lotStep), 0, "floor");
  return lots.mul(lotStep);
}

/** The smallest volume in lots: the lot step / the contract size. */
export function lotsStep(spec: InstrumentSpec): Decimal {
  return lotsOf(spec.lotStep, spec);
}

/** A quantity in lots, exact: quantity / contract size (a power of ten, so it terminates). */
export function lotsOf(quantity: Decimal, spec: InstrumentSpec): Decimal {
  const contract = spec.contractSize;
  // Dividing by 10^k needs k more fraction digits; by 10^-k none.
  const extra = contract.gte(Decimal.fromInteger(1)) ? contract.toFixed(0).length - 1 : 0;
  return quantity.div(contract, quantity.significantScale() + extra, "floor");
}

/** Read a typed amount that must be a number greater than zero. */
export function parsePositive(
  text: string,
): { readonly ok: true; readonly value: Decimal } | { readonly ok: false; readonly message: string } {
  const value = Decimal.tryParse(text);
  if (value === null) return { ok: false, message: "Enter a number" };
  if (!value.isPositive()) return { ok: false, message: "Must be greater than zero" };
  return { ok: true, value };
}

/** A size given in units or lots: the two ways of sizing that name a quantity outright. */
export type QuantitySizeMode = Exclude<SizeMode, "margin">;

export type SizeResult =
  | { readonly ok: true; readonly quantity: Decimal; readonly lots: Decimal }
  | { readonly ok: false; readonly message: string };

/**
 * The quantity of a size typed in units or in lots (lots x contract size), which must fall on
 * the instrument's lot step: off the grid it is refused, never rounded.
 */
export function quantityOfSize(spec: InstrumentSpec, mode: QuantitySizeMode, amount: Decimal): SizeResult {
  const quantity = mode === "lots" ? amount.mul(spec.contractSize) : amount;
  if (!quantity.isMultipleOf(spec.lotStep)) {
    const message =
      mode === "lots"
        ? `Lots must be a multiple of ${lotsStep(spec).toPlainString()}`
        : `Quantity must be a multiple of ${spec.lotStep.toPlainString()}`;
    return { ok: false, message };
  }
  return { ok: true, quantity, lots: lotsOf(quantity, spec) };
}

/** Read a size typed in units or lots: a positive number on the instrument's lot grid. */
export function readSize(spec: InstrumentSpec, mode: QuantitySizeMode, text: string): SizeResult {
  const parsed = parsePositive(text);
  return parsed.ok ? quantityOfSize(spec, mode, parsed.value) : parsed;
}

/** A quantity as a size field shows it: in units, or in lots through the contract size. */
export function sizeOfQuantity(quantity: string | undefined, spec: InstrumentSpec, mode: QuantitySizeMode): string {
  const value = Decimal.tryParse(quantity);
  if (value === null) return "";
  return (mode === "lots" ? lotsOf(value, spec) : value).toPlainString();
}

/** Notional value of a quantity at a price, exact. */
export function notionalOf(quantity: Decimal, price: Decimal): Decimal {
  return quantity.mul(price);
}

/** Margin charged for a notional at a leverage: notional / leverage rounded up to 1e-6. */
export function marginFor(notional: Decimal, leverage: number): Decimal {
  return notional.div(Decimal.fromInteger(leverage), MONEY_SCALE, "ceil");
}

/** Maintenance margin: the instrument's rate times the entry notional, rounded up to 1e-6. */
export function maintenanceMarginFor(rate: Decimal, notional: Decimal): Decimal {
  return rate.mul(notional).rescale(MONEY_SCALE, "ceil");
}

/**
 * Liquidation price of a position.
 *
 * A buy is liquidated at entry - (margin - maintenance) / quantity rounded up to the tick, a
 * sell at entry + (margin - maintenance) / quantity rounded down to the tick; both round
 * toward the entry so that the house never carries the rounding.
 */
export function liquidationPrice(
  side: Side,
  entry: Decimal,
  quantity: Decimal,
  margin: Decimal,
  maintenance: Decimal,
  tickSize: Decimal,
): Decimal {
  const cushion = margin.sub(maintenance);
  // Exact: count whole ticks in (entry x quantity -/+ cushion) / quantity, one division.
  const scaledEntry = entry.mul(quantity);
  const tickExposure = quantity.mul(tickSize);
  if (side === "SIDE_BUY") {
    const ticks = scaledEntry.sub(cushion).div(tickExposure, 0, "ceil");
    return ticks.mul(tickSize);
  }
  const ticks = scaledEntry.add(cushion).div(tickExposure, 0, "floor");
  return ticks.mul(tickSize);
}

/** Parse the leverage typed or slid by the user: an integer from 1 to the instrument's max. */
export function parseLeverage(value: number, maxLeverage: number): number | null {
  if (!Number.isInteger(value) || value < 1 || value > maxLeverage) {
    return null;
  }
  return value;
}

/** Compute what an order would charge and where it would be liquidated. */
export function previewOrder(input: PreviewInput): PreviewResult {
  const { spec, side, price, leverage, sizeMode } = input;
  if (parseLeverage(leverage, spec.maxLeverage) === null) {
    return { ok: false, field: "leverage", message: `Leverage must be 1 to ${spec.maxLeverage}` };
  }
  if (!price.isPositive()) {
    return { ok: false, field: "price", message: "No price to compute from" };
  }
  const parsed = parsePositive(input.amount);
  if (!parsed.ok) return { ok: false, field: "amount", message: parsed.message };
  const amount = parsed.value;
  let quantity: Decimal;
  if (sizeMode !== "margin") {
    const sized = quantityOfSize(spec, sizeMode, amount);
    if (!sized.ok) return { ok: false, field: "amount", message: sized.message };
    quantity = sized.quantity;
  } else {
    if (amount.significantScale() > MONEY_SCALE) {
      return { ok: false, field: "amount", message: "At most 6 decimals" };
    }
    quantity = quantityFromMargin(amount, leverage, price, spec.lotStep);
  }
  if (quantity.lt(spec.minQuantity)) {
    return {
      ok: false,
      field: "amount",
      message: `Quantity below the minimum ${spec.minQuantity.toPlainString()}`,
    };
  }
  const notional = notionalOf(quantity, price);
  const margin = marginFor(notional, leverage);
  const maintenance = maintenanceMarginFor(spec.maintenanceMarginRate, notional);
  const liquidation = liquidationPrice(side, price, quantity, margin, maintenance, spec.tickSize);
  return {
    ok: true,
    preview: {
      quantity,
      lots: lotsOf(quantity, spec),
      notional,
      margin,
      maintenance,
      liquidationPrice: liquidation,
    },
  };
}

/** The price a market order would fill at: the ask for a buy, the bid for a sell. */
export function fillPrice(side: Side, bid: Decimal, ask: Decimal): Decimal {
  return side === "SIDE_BUY" ? ask : bid;
}

/** Unrealized PnL: buy (bid - entry) x quantity, sell (entry - ask) x quantity. */
export function unrealizedPnl(
  side: Side,
  entry: Decimal,
  quantity: Decimal,
  bid: Decimal,
  ask: Decimal,
): Decimal {
  return side === "SIDE_BUY" ? bid.sub(entry).mul(quantity) : entry.sub(ask).mul(quantity);
}
