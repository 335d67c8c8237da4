import { describe, expect, it } from "vitest";
import { mergeHistory } from "../../src/lib/history";
import type { Position } from "../../src/lib/types";

function closed(id: string, time: string, quantity = "1"): Position {
  return {
    id,
    symbol: "BTCUSD",
    side: "SIDE_BUY",
    quantity,
    leverage: 10,
    entryPrice: "100.00",
    margin: "10",
    closeTime: time,
    closeReason: "CLOSE_REASON_USER",
  };
}

describe("history merge", () => {
  it("shows announced closes the server has not recorded yet, newest first", () => {
    const page = [closed("p-1", "2026-11-22T02:00:00Z")];
    const announced = [closed("p-2", "2026-11-22T02:05:00Z"), closed("p-2", "2026-11-22T02:05:00Z")];
    expect(mergeHistory(page, announced).map((p) => p.id)).toEqual(["p-2", "p-1"]);
  });

  it("keeps partial closes of one position apart and drops what the server has", () => {
    const first = closed("p-3", "2026-11-22T02:01:00Z", "0.5");
    const second = closed("p-3", "2026-11-22T02:02:00Z", "0.25");
    const page = [first];
    const merged = mergeHistory(page, [second, first]);
    expect(merged).toEqual([second, first]);
    expect(mergeHistory([second, first], [second, first])).toEqual([second, first]);
  });
});
