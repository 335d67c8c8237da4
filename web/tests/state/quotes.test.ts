import { describe, expect, it } from "vitest";
import { QuoteStore } from "../../src/state/quotes";

describe("quote store", () => {
  it("takes every stream quote and notifies only that symbol", () => {
    const store = new QuoteStore(() => 42);
    const seen: string[] = [];
    store.subscribe("BTCUSD", () => seen.push("btc"));
    store.subscribe(null, () => seen.push("any"));
    store.put({ symbol: "BTCUSD", bid: "100.00", ask: "100.10", sequence: "5" });
    store.put({ symbol: "ETHUSD", bid: "10.00", ask: "10.01", sequence: "6" });
    expect(seen).toEqual(["btc", "any", "any"]);
    store.put({ symbol: "BTCUSD", bid: "101.00", ask: "101.10", sequence: "2" });
    expect(store.get("BTCUSD")?.direction).toBe(1);
    expect(store.get("BTCUSD")?.receivedAt).toBe(42);
    store.put({ symbol: "BTCUSD", bid: "1e3", ask: "x" });
    expect(store.get("BTCUSD")?.quote.bid).toBe("101.00");
  });

  it("lets a REST snapshot fill in only what the stream has not delivered", () => {
    const store = new QuoteStore();
    store.put({ symbol: "BTCUSD", bid: "100.00", ask: "100.10", sequence: "3" });
    store.seed({ symbol: "BTCUSD", bid: "90.00", ask: "90.10", sequence: "900" });
    store.seed({ symbol: "ETHUSD", bid: "10.00", ask: "10.01", sequence: "901" });
    expect(store.get("BTCUSD")?.quote.bid).toBe("100.00");
    expect(store.get("ETHUSD")?.quote.bid).toBe("10.00");
  });
});
