import { describe, expect, it } from "vitest";
import { Decimal } from "../../src/lib/decimal";
import {
  type InstrumentSpec,
  liquidationPrice,
  lotsOf,
  lotsStep,
  maintenanceMarginFor,
  marginFor,
  previewOrder,
  quantityFromMargin,
  quantityOfSize,
  readSize,
  sizeOfQuantity,
  unrealizedPnl,
} from "../../src/lib/trading";

const d = (text: string) => Decimal.parse(text);

function spec(symbol: string, tick: string, lot: string, rate = "0", contract = "1"): InstrumentSpec {
  return {
    symbol,
    tickSize: d(tick),
    lotStep: d(lot),
    minQuantity: d(lot),
    maxLeverage: 100,
    maintenanceMarginRate: d(rate),
    contractSize: d(contract),
  };
}

const BTC = spec("BTCUSD", "0.01", "0.0001");
const ETH = spec("ETHUSD", "0.01", "0.001");
const SOL = spec("SOLUSD", "0.001", "0.01");

describe("margin and quantity", () => {
  it("charges notional / leverage rounded up to 1e-6", () => {
    expect(marginFor(d("642.5015"), 10).toString()).toBe("64.250150");
    expect(marginFor(d("6.425015"), 3).toString()).toBe("2.141672");
    expect(marginFor(d("1998.179665"), 20).toString()).toBe("99.908984");
  });

  it("derives the quantity from a margin, floored to the lot step", () => {
    expect(quantityFromMargin(d("100"), 20, d("64250.15"), BTC.lotStep).toString()).toBe("0.0311");
    expect(quantityFromMargin(d("250"), 50, d("142.317"), SOL.lotStep).toString()).toBe("87.83");
    expect(quantityFromMargin(d("0.5"), 1, d("64250.15"), BTC.lotStep).isZero()).toBe(true);
  });

  it("computes the maintenance margin from the rate, rounded up", () => {
    expect(maintenanceMarginFor(d("0.005"), d("4680.675")).toString()).toBe("23.403375");
    expect(maintenanceMarginFor(d("0"), d("4680.675")).isZero()).toBe(true);
  });
});

describe("liquidation price", () => {
  it("rounds a buy up to the tick", () => {
    const price = liquidationPrice("SIDE_BUY", d("64250.15"), d("0.01"), d("64.250150"), d("0"), d("0.01"));
    expect(price.toString()).toBe("57825.14");
  });

  it("rounds a sell down to the tick", () => {
    const price = liquidationPrice("SIDE_SELL", d("64240.00"), d("0.01"), d("64.24"), d("0"), d("0.01"));
    expect(price.toString()).toBe("70664.00");
    const sol = liquidationPrice("SIDE_SELL", d("142.317"), d("87.83"), d("249.994043"), d("0"), d("0.001"));
    expect(sol.toString()).toBe("145.163");
  });

  it("subtracts the maintenance margin from the cushion", () => {
    const margin = d("187.227000");
    const maintenance = d("23.403375");
    expect(liquidationPrice("SIDE_BUY", d("3120.45"), d("1.5"), margin, maintenance, d("0.01")).toString()).toBe("3011.24");
    expect(liquidationPrice("SIDE_SELL", d("3120.45"), d("1.5"), margin, maintenance, d("0.01")).toString()).toBe("3229.66");
  });
});

describe("order preview", () => {
  it("previews a quantity order at the fill price", () => {
    const result = previewOrder({ spec: BTC, side: "SIDE_BUY", price: d("64250.15"), leverage: 10, sizeMode: "quantity", amount: "0.01" });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.preview.notional.toPlainString()).toBe("642.5015");
    expect(result.preview.margin.toString()).toBe("64.250150");
    expect(result.preview.liquidationPrice.toString()).toBe("57825.14");
  });

  it("previews a margin order", () => {
    const result = previewOrder({ spec: BTC, side: "SIDE_BUY", price: d("64250.15"), leverage: 20, sizeMode: "margin", amount: "100" });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.preview.quantity.toPlainString()).toBe("0.0311");
    expect(result.preview.margin.toString()).toBe("99.908984");
    expect(result.preview.liquidationPrice.toString()).toBe("61037.65");
  });

  it("uses the instrument's maintenance rate", () => {
    const eth = { ...ETH, maintenanceMarginRate: d("0.005") };
    const result = previewOrder({ spec: eth, side: "SIDE_SELL", price: d("3120.45"), leverage: 25, sizeMode: "quantity", amount: "1.5" });
    expect(result.ok && result.preview.liquidationPrice.toString()).toBe("3229.66");
    expect(result.ok && result.preview.maintenance.toString()).toBe("23.403375");
  });

  it("rejects bad sizes and leverage with the field at fault", () => {
    const base = { spec: BTC, side: "SIDE_BUY", price: d("64250.15"), leverage: 10, sizeMode: "quantity" } as const;
    expect(previewOrder({ ...base, amount: "0.00015" })).toMatchObject({ ok: false, field: "amount" });
    expect(previewOrder({ ...base, amount: "-1" })).toMatchObject({ ok: false, field: "amount" });
    expect(previewOrder({ ...base, amount: "1e3" })).toMatchObject({ ok: false, field: "amount" });
    expect(previewOrder({ ...base, amount: "0.01", leverage: 101 })).toMatchObject({ ok: false, field: "leverage" });
    expect(previewOrder({ ...base, amount: "0.01", leverage: 2.5 })).toMatchObject({ ok: false, field: "leverage" });
    expect(previewOrder({ ...base, amount: "0.01", leverage: 0 })).toMatchObject({ ok: false, field: "leverage" });
    expect(previewOrder({ ...base, sizeMode: "margin", amount: "0.5" })).toMatchObject({ ok: false, field: "amount" });
    expect(previewOrder({ ...base, sizeMode: "margin", amount: "1.0000001" })).toMatchObject({ ok: false, field: "amount" });
  });
});

describe("unrealized PnL", () => {
  it("marks a buy at the bid and a sell at the ask", () => {
    expect(unrealizedPnl("SIDE_BUY", d("64250.15"), d("0.01"), d("65000.00"), d("65010.00")).toPlainString()).toBe("7.4985");
    expect(unrealizedPnl("SIDE_SELL", d("64240.00"), d("0.01"), d("65000.00"), d("65010.00")).toPlainString()).toBe("-7.7");
  });
});

// The worked examples of the engine core's tests (tests/unit/engine_svc/core/test_positions.py):
// the preview must charge the same margin and show the same liquidation price.
describe("engine worked examples", () => {
  const cases = [
    { name: "BTC buy 0.0003 x7", spec: BTC, side: "SIDE_BUY", price: "64250.15", leverage: 7, sizeMode: "quantity", amount: "0.0003", quantity: "0.0003", margin: "2.753578", liquidation: "55071.56" },
    { name: "BTC sell 0.0003 x7", spec: BTC, side: "SIDE_SELL", price: "64250.15", leverage: 7, sizeMode: "quantity", amount: "0.0003", quantity: "0.0003", margin: "2.753578", liquidation: "73428.74" },
    { name: "ETH buy 1.5 x20", spec: ETH, side: "SIDE_BUY", price: "3000.00", leverage: 20, sizeMode: "quantity", amount: "1.5", quantity: "1.5", margin: "225", liquidation: "2850.00" },
    { name: "SOL buy 2.5 x3", spec: SOL, side: "SIDE_BUY", price: "150.125", leverage: 3, sizeMode: "quantity", amount: "2.5", quantity: "2.5", margin: "125.104167", liquidation: "100.084" },
    { name: "BTC buy by 100 USD margin x10", spec: BTC, side: "SIDE_BUY", price: "64250.15", leverage: 10, sizeMode: "margin", amount: "100", quantity: "0.0155", margin: "99.587733", liquidation: null },
    { name: "BTC buy 0.1 x10", spec: BTC, side: "SIDE_BUY", price: "60000.00", leverage: 10, sizeMode: "quantity", amount: "0.1", quantity: "0.1", margin: "600", liquidation: "54000.00" },
    { name: "ETH sell 2 x5", spec: ETH, side: "SIDE_SELL", price: "3000.00", leverage: 5, sizeMode: "quantity", amount: "2", quantity: "2", margin: "1200", liquidation: "3600.00" },
  ] as const;

  for (const example of cases) {
    it(example.name, () => {
      const result = previewOrder({
        spec: example.spec,
        side: example.side,
        price: d(example.price),
        leverage: example.leverage,
        sizeMode: example.sizeMode,
        amount: example.amount,
      });
      expect(result.ok).toBe(true);
      if (!result.ok) return;
      expect(result.preview.quantity.eq(d(example.quantity))).toBe(true);
      expect(result.preview.margin.toPlainString()).toBe(example.margin);
      if (example.liquidation !== null) {
        expect(result.preview.liquidationPrice.toString()).toBe(example.liquidation);
      }
    });
  }

  it("refuses a margin too small for one lot (6 USD at x1)", () => {
    const result = previewOrder({ spec: BTC, side: "SIDE_BUY", price: d("64250.15"), leverage: 1, sizeMode: "margin", amount: "6" });
    expect(result).toMatchObject({ ok: false, field: "amount" });
  });

  it("recomputes the liquidation price after a partial close", () => {
    // 0.0001 of 0.0003 closed: margin 2.753578 releases 0.917859 (rounded down), 1.835719 stays.
    const price = liquidationPrice("SIDE_BUY", d("64250.15"), d("0.0002"), d("1.835719"), d("0"), d("0.01"));
    expect(price.toString()).toBe("55071.56");
  });
});

describe("lots", () => {
  const XRP = spec("XRPUSD", "0.0001", "1", "0", "1000");
  const TINY = spec("ABCUSD", "0.01", "10", "0", "0.01");

  it("shows a quantity in lots exactly: quantity / contract size", () => {
    expect(lotsOf(d("0.0150"), BTC).toPlainString()).toBe("0.015");
    expect(lotsOf(d("2500"), XRP).toPlainString()).toBe("2.5");
    expect(lotsOf(d("1"), XRP).toPlainString()).toBe("0.001");
    expect(lotsOf(d("30"), TINY).toPlainString()).toBe("3000");
    expect(lotsStep(XRP).toPlainString()).toBe("0.001");
  });

  it("sizes an order in lots through the contract size", () => {
    const result = previewOrder({
      spec: XRP, side: "SIDE_BUY", price: d("0.5001"), leverage: 50, sizeMode: "lots", amount: "2.5",
    });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.preview.quantity.toPlainString()).toBe("2500");
    expect(result.preview.lots.toPlainString()).toBe("2.5");
    expect(result.preview.margin.toString()).toBe("25.005000");
  });

  it("refuses lots off the lot-step grid instead of rounding them", () => {
    const result = previewOrder({
      spec: XRP, side: "SIDE_BUY", price: d("0.5001"), leverage: 50, sizeMode: "lots", amount: "0.0015",
    });
    expect(result).toEqual({ ok: false, field: "amount", message: "Lots must be a multiple of 0.001" });
  });

  it("reads a size in lots or units as a quantity on the lot grid", () => {
    const lots = readSize(XRP, "lots", "0.5");
    expect(lots.ok).toBe(true);
    if (!lots.ok) return;
    expect(lots.quantity.toPlainString()).toBe("500");
    expect(lots.lots.toPlainString()).toBe("0.5");
    const units = readSize(XRP, "quantity", "2000");
    expect(units.ok).toBe(true);
    if (!units.ok) return;
    expect(units.quantity.toPlainString()).toBe("2000");
    expect(units.lots.toPlainString()).toBe("2");
  });

  it("refuses a size off the grid, unreadable or not positive, naming its unit", () => {
    expect(readSize(XRP, "lots", "0.0015")).toEqual({ ok: false, message: "Lots must be a multiple of 0.001" });
    expect(readSize(XRP, "quantity", "1.5")).toEqual({ ok: false, message: "Quantity must be a multiple of 1" });
    expect(quantityOfSize(TINY, "lots", d("0.5"))).toEqual({ ok: false, message: "Lots must be a multiple of 1000" });
    expect(readSize(XRP, "lots", "abc")).toEqual({ ok: false, message: "Enter a number" });
    expect(readSize(XRP, "quantity", "0")).toEqual({ ok: false, message: "Must be greater than zero" });
  });

  it("shows a quantity in the unit a size field takes", () => {
    expect(sizeOfQuantity("2500", XRP, "lots")).toBe("2.5");
    expect(sizeOfQuantity("2500", XRP, "quantity")).toBe("2500");
    expect(sizeOfQuantity("0.0200", BTC, "quantity")).toBe("0.02");
    expect(sizeOfQuantity(undefined, XRP, "lots")).toBe("");
  });
});
