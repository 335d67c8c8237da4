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
