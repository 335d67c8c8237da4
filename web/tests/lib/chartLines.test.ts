import { describe, expect, it } from "vitest";
import { chartLines, describeMove, lineAt, snapToTick } from "../../src/lib/chartLines";
import { Decimal } from "../../src/lib/decimal";
import type { Order, Position } from "../../src/lib/types";

const position: Position = {
  id: "p1",
  symbol: "BTCUSD",
  side: "SIDE_BUY",
  quantity: "0.500",
  leverage: 10,
  entryPrice: "64010.00",
  margin: "3200.5",
  liquidationPrice: "57609.00",
  takeProfit: "66000",
  stopLoss: "63000",
  trailingDistance: "500",
  trailingStopPrice: "63510.00",
};

const order: Order = {
  id: "o1",
  symbol: "BTCUSD",
  side: "SIDE_SELL",
  type: "ORDER_TYPE_LIMIT",
  triggerPrice: "65000.00",
  leverage: 5,
  quantity: "0.2",
  status: "ORDER_STATUS_PENDING",
};

describe("chart lines", () => {
  it("draws entry, TP, SL, trailing and liquidation of a position, TP and SL draggable", () => {
    const lines = chartLines("BTCUSD", [position], []);
    expect(lines.map((l) => [l.kind, l.price, l.title])).toEqual([
      ["entry", "64010.00", "Buy 0.5"],
      ["takeProfit", "66000", "TP Buy 0.5"],
      ["stopLoss", "63000", "SL Buy 0.5"],
      ["trailing", "63510.00", "Trail Buy 0.5"],
      ["liquidation", "57609.00", "Liq. Buy 0.5"],
    ]);
    expect(lines.filter((l) => l.drag !== undefined).map((l) => l.drag)).toEqual([
      { positionId: "p1", field: "takeProfit" },
      { positionId: "p1", field: "stopLoss" },
    ]);
  });

  it("leaves out absent stops and other symbols", () => {
    const bare: Position = { ...position, takeProfit: "", stopLoss: undefined, trailingStopPrice: undefined, liquidationPrice: undefined };
    const other: Position = { ...position, id: "p2", symbol: "ETHUSD" };
    expect(chartLines("BTCUSD", [bare, other], []).map((l) => l.key)).toEqual(["p1:entry"]);
  });

  it("draws a pending order's trigger, draggable, sized by quantity or margin", () => {
    const byMargin: Order = { ...order, id: "o2", quantity: undefined, margin: "250" };
    const lines = chartLines("BTCUSD", [], [order, byMargin, { ...order, id: "o3", symbol: "SOLUSD" }]);
    expect(lines.map((l) => [l.title, l.price, l.drag])).toEqual([
      ["Sell limit 0.2", "65000.00", { orderId: order.id, field: "triggerPrice" }],
      ["Sell limit 250 USD", "65000.00", { orderId: "o2", field: "triggerPrice" }],
    ]);
  });

  it("finds the nearest draggable line within the tolerance", () => {
    const lines = chartLines("BTCUSD", [position], []);
    // One pixel per 10 USD, 66000 at row 0.
    const toY = (price: number) => (66000 - price) / 10;
    expect(lineAt(lines, 3, toY, 5)?.kind).toBe("takeProfit");
    expect(lineAt(lines, 298, toY, 5)?.kind).toBe("stopLoss");
    // The entry line (row 199) is near but not draggable.
    expect(lineAt(lines, 199, toY, 5)).toBeNull();
    expect(lineAt(lines, 20, toY, 5)).toBeNull();
    expect(lineAt(lines, 3, () => null, 5)).toBeNull();
  });

  it("snaps a pointer price to the nearest tick exactly", () => {
    const cent = Decimal.parse("0.01");
    expect(snapToTick(63249.996, cent)?.toPlainString()).toBe("63250");
    expect(snapToTick(63249.994, cent)?.toPlainString()).toBe("63249.99");
    expect(snapToTick(150.0304, Decimal.parse("0.005"))?.toString()).toBe("150.030");
    expect(snapToTick(150.0326, Decimal.parse("0.005"))?.toString()).toBe("150.035");
    expect(snapToTick(0.001, cent)).toBeNull();
    expect(snapToTick(Number.NaN, cent)).toBeNull();
    expect(snapToTick(-5, cent)).toBeNull();
  });

  it("describes a move with grouped prices", () => {
    expect(describeMove("Stop loss", "63000", Decimal.parse("63250.5"), 2)).toBe(
      "Stop loss 63,000.00 → 63,250.50",
    );
  });
});
