import { describe, expect, it } from "vitest";
import { describeEvent } from "../../src/lib/eventText";
import type { AccountEvent, Position } from "../../src/lib/types";

const position: Position = {
  id: "p1",
  symbol: "ETHUSD",
  side: "SIDE_BUY",
  quantity: "1",
  leverage: 20,
  entryPrice: "3000.60",
  margin: "200.000000",
  liquidationPrice: "2800.60",
};

const marginReserved: AccountEvent = {
  sequence: "42",
  type: "EVENT_TYPE_BALANCE_CHANGED",
  balanceChange: {
    kind: "BALANCE_CHANGE_KIND_MARGIN_RESERVED",
    amount: "-49.970000",
    balance: "4800",
    positionId: "p1",
  },
};

const modified: AccountEvent = {
  sequence: "42",
  index: 1,
  type: "EVENT_TYPE_POSITION_MODIFIED",
  position,
};

describe("event toasts", () => {
  it("say how much margin was added, the new margin and the liquidation price", () => {
    expect(describeEvent(modified, marginReserved)).toEqual({
      title: "Margin added",
      body: "+49.97 USD to Buy 1 ETHUSD: margin 200.00 USD, liquidation at 2,800.60",
      tone: "info",
    });
  });

  it("call other modifications an update", () => {
    expect(describeEvent(modified)?.title).toBe("Position updated");
    expect(describeEvent(modified, { ...marginReserved, sequence: "41" })?.title).toBe(
      "Position updated",
    );
    const otherPosition = { ...marginReserved.balanceChange, positionId: "p2" };
    expect(describeEvent(modified, { ...marginReserved, balanceChange: otherPosition })?.title).toBe(
      "Position updated",
    );
  });

  it("group prices as sent", () => {
    const opened: AccountEvent = { sequence: "7", type: "EVENT_TYPE_POSITION_OPENED", position: { ...position, entryPrice: "64010.00" } };
    expect(describeEvent(opened)?.body).toBe("Buy 1 ETHUSD at 64,010.00");
  });
});

describe("spot event toasts", () => {
  it("tells a fill with its exact fee and role", () => {
    const message = describeEvent({
      sequence: "9",
      type: "EVENT_TYPE_SPOT_FILL",
      spotFill: {
        id: "t-1-t",
        orderId: "s-8",
        market: "BTC_USD",
        side: "SIDE_BUY",
        price: "61000.00",
        quantity: "0.0100",
        fee: "0.610000",
        liquidity: "LIQUIDITY_TAKER",
      },
    });
    expect(message).toEqual({
      title: "Spot fill",
      body: "Buy 0.01 BTC_USD at 61,000.00, fee 0.61 USD (taker)",
      tone: "success",
    });
  });

  it("tells which way a transfer went", () => {
    const toSpot = describeEvent({
      sequence: "3",
      type: "EVENT_TYPE_BALANCE_CHANGED",
      balanceChange: { kind: "BALANCE_CHANGE_KIND_TRANSFER", amount: "-1000.000000" },
    });
    expect(toSpot?.body).toBe("1,000.00 USD to the spot wallet");
    const toCfd = describeEvent({
      sequence: "4",
      type: "EVENT_TYPE_BALANCE_CHANGED",
      balanceChange: { kind: "BALANCE_CHANGE_KIND_TRANSFER", amount: "12.5" },
    });
    expect(toCfd?.body).toBe("12.50 USD to the CFD balance");
  });

  it("tells a cancelled spot order", () => {
    const message = describeEvent({
      sequence: "5",
      type: "EVENT_TYPE_SPOT_ORDER_CANCELLED",
      spotOrder: {
        id: "s-4",
        market: "BTC_USD",
        side: "SIDE_SELL",
        type: "SPOT_ORDER_TYPE_LIMIT",
        price: "65000.00",
        quantity: "0.02",
        status: "SPOT_ORDER_STATUS_CANCELLED",
      },
    });
    expect(message?.body).toBe("Sell 0.02 BTC_USD at 65,000.00");
  });

  it("say what a rollover charged or credited, and how many days", () => {
    const charged: AccountEvent = {
      sequence: "90",
      type: "EVENT_TYPE_SWAP_CHARGED",
      position: { ...position, swap: "-1.8" },
      swapCharge: { amount: "-1.80009", multiplier: 3, rolloverDate: "2026-01-07" },
    };
    expect(describeEvent(charged)).toEqual({
      title: "Swap charged",
      body: "-1.80009 USD on Buy 1 ETHUSD (×3), rollover 2026-01-07",
      tone: "info",
    });
    const credited = { ...charged, swapCharge: { amount: "0.25", multiplier: 1, rolloverDate: "2026-01-08" } };
    expect(describeEvent(credited)).toEqual({
      title: "Swap credited",
      body: "+0.25 USD on Buy 1 ETHUSD, rollover 2026-01-08",
      tone: "info",
    });
  });
});
