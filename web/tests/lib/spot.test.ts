import { describe, expect, it } from "vitest";
import type { Level } from "../../src/lib/book";
import { Decimal } from "../../src/lib/decimal";
import {
  type MarketSpec,
  type SpotPreviewInput,
  buyLimitLock,
  describePlacement,
  feeOf,
  formatFeeRate,
  groupSteps,
  previewSpotOrder,
  toMarketSpec,
  transferAmountError,
} from "../../src/lib/spot";

const d = (text: string) => Decimal.parse(text);
const level = (price: string, quantity: string): Level => ({ price: d(price), quantity: d(quantity) });

const BTC = toMarketSpec({
  name: "BTC_USD",
  baseAsset: "BTC",
  quoteAsset: "USD",
  tickSize: "0.01",
  lotStep: "0.0001",
  takerFeeBps: 10,
}) as MarketSpec;

function input(overrides: Partial<SpotPreviewInput>): SpotPreviewInput {
  return {
    spec: BTC,
    side: "SIDE_BUY",
    execution: "limit",
    price: "64000.00",
    sizeMode: "quantity",
    amount: "0.01",
    postOnly: false,
    opposite: [],
    ...overrides,
  };
}

function preview(overrides: Partial<SpotPreviewInput>) {
  const result = previewSpotOrder(input(overrides));
  if (!result.ok) throw new Error(result.message);
  return result.preview;
}

describe("market spec", () => {
  it("reads an omitted maker fee as zero and refuses unusable steps", () => {
    expect(BTC.makerFeeBps).toBe(0);
    expect(BTC.takerFeeBps).toBe(10);
    expect(BTC.priceDigits).toBe(2);
    expect(toMarketSpec({ name: "X_USD", baseAsset: "X", quoteAsset: "USD", tickSize: "0", lotStep: "1" })).toBeNull();
    expect(
      toMarketSpec({ name: "X_USD", baseAsset: "X", quoteAsset: "USD", tickSize: "1", lotStep: "1", takerFeeBps: 1.5 }),
    ).toBeNull();
  });

  it("offers groupings of the tick and shows rates as percentages", () => {
    expect(groupSteps(d("0.01")).map((s) => s.toPlainString())).toEqual(["0.01", "0.1", "1", "10"]);
    expect(formatFeeRate(10)).toBe("0.1%");
    expect(formatFeeRate(0)).toBe("0%");
    expect(formatFeeRate(25)).toBe("0.25%");
  });
});

describe("fees and locks", () => {
  it("rounds a fee up to the micro-USD", () => {
    expect(feeOf(d("640.0015"), 10).toString()).toBe("0.640002");
    expect(feeOf(d("600"), 10).toString()).toBe("0.600000");
    expect(feeOf(d("600"), 0).isZero()).toBe(true);
  });

  it("locks price x quantity plus the taker fee for a buy limit", () => {
    expect(buyLimitLock(d("64000.15"), d("0.0001"), 10).toString()).toBe("6.406416");
  });
});

describe("limit order preview", () => {
  it("prices a buy by quantity with the taker fee and its lock", () => {
    const p = preview({});
    expect(p.value.toPlainString()).toBe("640");
    expect(p.fee.toString()).toBe("0.640000");
    expect(p.total.toPlainString()).toBe("640.64");
    expect(p.lock.toPlainString()).toBe("640.64");
    expect(p.size).toEqual({ quantity: "0.01" });
    expect(p.estimated).toBe(false);
  });

  it("charges a post-only order the maker fee but locks the taker fee", () => {
    const p = preview({ postOnly: true });
    expect(p.fee.isZero()).toBe(true);
    expect(p.total.toPlainString()).toBe("640");
    expect(p.lock.toPlainString()).toBe("640.64");
  });

  it("gives a seller the value less the fee and locks the base quantity", () => {
    const p = preview({ side: "SIDE_SELL", price: "64000.15", amount: "0.0001" });
    expect(p.value.toPlainString()).toBe("6.400015");
    expect(p.fee.toString()).toBe("0.006401");
    expect(p.total.toPlainString()).toBe("6.393614");
    expect(p.lock.toPlainString()).toBe("0.0001");
  });

  it("turns a USD amount into whole lots at the price, rounding down", () => {
    const p = preview({ sizeMode: "quote", amount: "1000" });
    expect(p.size).toEqual({ quantity: "0.0156" });
    expect(p.value.toPlainString()).toBe("998.4");
    expect(p.total.toPlainString()).toBe("999.3984");
  });

  it("names the field at fault", () => {
    expect(previewSpotOrder(input({ price: "64000.005" }))).toEqual({
      ok: false,
      field: "price",
      message: "Must be a multiple of 0.01",
    });
    expect(previewSpotOrder(input({ price: "" }))).toMatchObject({ ok: false, field: "price" });
    expect(previewSpotOrder(input({ amount: "0.00015" }))).toMatchObject({
      ok: false,
      field: "amount",
      message: "Quantity must be a multiple of 0.0001",
    });
    expect(previewSpotOrder(input({ amount: "-1" }))).toMatchObject({ ok: false, field: "amount" });
    expect(previewSpotOrder(input({ sizeMode: "quote", amount: "1.0000001" }))).toMatchObject({
      ok: false,
      message: "At most 6 decimals",
    });
    expect(previewSpotOrder(input({ sizeMode: "quote", amount: "6" }))).toMatchObject({
      ok: false,
      message: "Less than one lot at this price",
    });
  });
});

describe("market order preview", () => {
  const asks = [level("64000.00", "0.01"), level("64010.00", "0.02"), level("64100.00", "1")];
  const bids = [level("63990.00", "0.005"), level("63980.00", "0.01")];

  it("walks the asks for a buy by quantity, a fee per level", () => {
    const p = preview({ execution: "market", amount: "0.02", opposite: asks });
    expect(p.quantity.toPlainString()).toBe("0.02");
    expect(p.value.toPlainString()).toBe("1280.1");
    // 0.64 on the first level, 0.640100 on the second.
    expect(p.fee.toPlainString()).toBe("1.2801");
    expect(p.total.toPlainString()).toBe("1281.3801");
    expect(p.averagePrice?.toPlainString()).toBe("64005");
    expect(p.lock.isZero()).toBe(true);
    expect(p.estimated).toBe(true);
    expect(p.shortfall).toBe(false);
  });

  it("spends a USD amount level by level in whole lots, fees on top", () => {
    const p = preview({ execution: "market", sizeMode: "quote", amount: "1000", opposite: asks });
    expect(p.size).toEqual({ quoteQuantity: "1000" });
    // 640 at 64000.00, then floor(360 / 6.401) = 56 lots at 64010.00.
    expect(p.quantity.toPlainString()).toBe("0.0156");
    expect(p.value.toPlainString()).toBe("998.456");
    expect(p.fee.toPlainString()).toBe("0.998456");
    expect(p.shortfall).toBe(false);
  });

  it("says when the book cannot fill the whole order", () => {
    const p = preview({ execution: "market", side: "SIDE_SELL", amount: "0.02", opposite: bids });
    expect(p.quantity.toPlainString()).toBe("0.015");
    expect(p.value.toPlainString()).toBe("959.75");
    expect(p.total.toPlainString()).toBe("958.79025");
    expect(p.shortfall).toBe(true);
    const all = preview({ execution: "market", sizeMode: "quote", amount: "100000", opposite: bids });
    expect(all.shortfall).toBe(true);
  });

  it("refuses an empty side and a sell sized in USD", () => {
    expect(previewSpotOrder(input({ execution: "market", opposite: [] }))).toMatchObject({
      ok: false,
      message: "No orders on the other side of the book",
    });
    expect(
      previewSpotOrder(input({ execution: "market", side: "SIDE_SELL", sizeMode: "quote", opposite: bids })),
    ).toMatchObject({ ok: false, message: "A market sell is sized by quantity" });
  });
});

describe("transfer amount", () => {
  it("accepts a positive amount to the micro-USD within the source", () => {
    expect(transferAmountError("1000", d("5000"))).toBeNull();
    expect(transferAmountError("0.000001", d("0.000001"))).toBeNull();
    expect(transferAmountError("12", null)).toBeNull();
  });

  it("refuses what the server would", () => {
    expect(transferAmountError("", d("1"))).toBe("Enter an amount");
    expect(transferAmountError("abc", d("1"))).toBe("Enter an amount");
    expect(transferAmountError("0", d("1"))).toBe("Must be greater than zero");
    expect(transferAmountError("0.0000001", d("1"))).toBe("At most 6 decimals");
    expect(transferAmountError("5000.000001", d("5000"))).toBe("More than is available");
  });
});

describe("placement in words", () => {
  const order = {
    id: "s-9",
    market: "BTC_USD",
    side: "SIDE_BUY" as const,
    type: "SPOT_ORDER_TYPE_LIMIT" as const,
    price: "64000.50",
    quantity: "0.0150",
  };

  it("tells a resting order by its price and quantity", () => {
    expect(describePlacement({ order: { ...order, status: "SPOT_ORDER_STATUS_OPEN" } }, BTC)).toBe(
      "Order placed: 0.015 BTC at 64,000.50",
    );
  });

  it("tells what filled, at which average price, and what became of the rest", () => {
    const filled = { filledQuantity: "0.0100", averagePrice: "63999.995" };
    expect(
      describePlacement({ order: { ...order, ...filled, status: "SPOT_ORDER_STATUS_PARTIALLY_FILLED" } }, BTC),
    ).toBe("Filled 0.01 BTC at 63,999.995 on average; the rest rests in the book");
    expect(
      describePlacement({ order: { ...order, ...filled, status: "SPOT_ORDER_STATUS_EXPIRED" } }, BTC),
    ).toBe("Filled 0.01 BTC at 63,999.995 on average; the rest expired");
    expect(
      describePlacement({ order: { ...order, filledQuantity: "0.0150", averagePrice: "64000", status: "SPOT_ORDER_STATUS_FILLED" } }, BTC),
    ).toBe("Filled 0.015 BTC at 64,000.00 on average");
    expect(describePlacement({ order: { ...order, status: "SPOT_ORDER_STATUS_EXPIRED" } }, BTC)).toBe(
      "Filled 0 BTC; the rest expired",
    );
  });
});
