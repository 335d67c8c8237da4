import { describe, expect, it } from "vitest";
import { QuoteStore } from "../../src/state/quotes";

describe("quote store", () => {
  it("keeps the newest quote per symbol and notifies only that symbol", () => {
    const store = new QuoteStore(() => 42);
    const seen: string[] = [];
    store.subscribe("BTCUSD", () => seen.push("btc"));
    store.subscribe(null, () => seen.push("any"));
    store.put({ symbol: "BTCUSD", bid: "100.00", ask: "100.10", sequence: "5" });
    store.put({ symbol: "ETHUSD", bid: "10.00", ask: "10.01", sequence: "6" });
    expect(seen).toEqual(["btc", "any", "any"]);
    store.put({ symbol: "BTCUSD", bid: "99.00", ask: "99.10", sequence: "4" });
    expect(store.get("BTCUSD")?.quote.bid).toBe("100.00");
    store.put({ symbol: "BTCUSD", bid: "101.00", ask: "101.10", sequence: "7" });
    expect(store.get("BTCUSD")?.direction).toBe(1);
    expect(store.get("BTCUSD")?.receivedAt).toBe(42);
    store.put({ symbol: "BTCUSD", bid: "1e3", ask: "x" });
    expect(store.get("BTCUSD")?.quote.bid).toBe("101.00");
  });
});
