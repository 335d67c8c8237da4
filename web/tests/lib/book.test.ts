import { describe, expect, it } from "vitest";
import { OrderBook, depthCurve, followBook, groupLevels, type Level, ladder, ratio, spread } from "../../src/lib/book";
import { Decimal } from "../../src/lib/decimal";
import { RealtimeClient } from "../../src/lib/realtime";
import type { BookUpdate } from "../../src/lib/types";
import { FakeClock, FakeSocket } from "./fakes";

const d = (text: string) => Decimal.parse(text);
const level = (price: string, quantity: string): Level => ({ price: d(price), quantity: d(quantity) });
const plain = (levels: readonly Level[]) =>
  levels.map((l) => [l.price.toPlainString(), l.quantity.toPlainString()]);

describe("order book from the stream", () => {
  it("starts from a snapshot and applies changes that follow it", () => {
    const book = new OrderBook("BTC_USD");
    expect(
      book.apply({
        market: "BTC_USD",
        sequence: "7",
        snapshot: true,
        bids: [{ price: "64000.00", quantity: "0.5" }, { price: "63999.99", quantity: "1" }],
        asks: [{ price: "64000.01", quantity: "0.25" }],
      }),
    ).toBe(true);
    expect(
      book.apply({
        market: "BTC_USD",
        sequence: "8",
        bids: [{ price: "64000.00", quantity: "0" }, { price: "63999.98", quantity: "2" }],
        asks: [{ price: "64000.02", quantity: "0.1" }],
      }),
    ).toBe(true);
    expect(book.sequence).toBe(8n);
    expect(plain(book.levels("bids"))).toEqual([["63999.99", "1"], ["63999.98", "2"]]);
    expect(plain(book.levels("asks"))).toEqual([["64000.01", "0.25"], ["64000.02", "0.1"]]);
  });

  it("refuses a change after a gap or before any snapshot, changing nothing", () => {
    const book = new OrderBook("BTC_USD");
    expect(book.apply({ market: "BTC_USD", sequence: "3", asks: [{ price: "1.00", quantity: "1" }] })).toBe(false);
    expect(book.sequence).toBeNull();
    book.apply({ market: "BTC_USD", sequence: "3", snapshot: true, asks: [{ price: "1.00", quantity: "1" }] });
    expect(book.apply({ market: "BTC_USD", sequence: "5", asks: [{ price: "1.00", quantity: "0" }] })).toBe(false);
    expect(book.sequence).toBe(3n);
    expect(plain(book.levels("asks"))).toEqual([["1", "1"]]);
  });

  it("reads an omitted sequence as zero and a new snapshot as the whole book", () => {
    const book = new OrderBook("SOL_USD");
    book.apply({ market: "SOL_USD", snapshot: true, bids: [{ price: "150.000", quantity: "3" }] });
    expect(book.sequence).toBe(0n);
    expect(book.apply({ market: "SOL_USD", sequence: "1", bids: [{ price: "149.999", quantity: "1" }] })).toBe(true);
    book.apply({ market: "SOL_USD", sequence: "9", snapshot: true, asks: [{ price: "151.000", quantity: "2" }] });
    expect(book.levels("bids")).toEqual([]);
    expect(plain(book.levels("asks"))).toEqual([["151", "2"]]);
  });

  it("treats one price written with different zeros as one level", () => {
    const book = new OrderBook("BTC_USD");
    book.apply({ market: "BTC_USD", sequence: "1", snapshot: true, bids: [{ price: "64000.00", quantity: "1" }] });
    book.apply({ market: "BTC_USD", sequence: "2", bids: [{ price: "64000", quantity: "0" }] });
    expect(book.levels("bids")).toEqual([]);
  });
});

describe("ladder", () => {
  const bids = [level("100.07", "1"), level("100.03", "2"), level("99.99", "0.5")];
  const asks = [level("100.11", "1.5"), level("100.19", "0.25"), level("100.21", "4")];

  it("groups bids down and asks up to the step, adding quantities exactly", () => {
    expect(plain(groupLevels(bids, "bids", d("0.1")))).toEqual([["100", "3"], ["99.9", "0.5"]]);
    expect(plain(groupLevels(asks, "asks", d("0.1")))).toEqual([["100.2", "1.75"], ["100.3", "4"]]);
  });

  it("accumulates from the best price with depth on one scale for both sides", () => {
    const rows = ladder(bids, asks, d("0.01"), 2);
    expect(rows.bids.map((r) => [r.price.toPlainString(), r.cumulative.toPlainString(), r.depth])).toEqual([
      ["100.07", "1", 0.3333],
      ["100.03", "3", 1],
    ]);
    expect(rows.asks.map((r) => [r.price.toPlainString(), r.cumulative.toPlainString(), r.depth])).toEqual([
      ["100.11", "1.5", 0.5],
      ["100.19", "1.75", 0.5833],
    ]);
  });

  it("draws no bars for an empty book", () => {
    expect(ladder([], [], d("0.01"), 10)).toEqual({ bids: [], asks: [] });
    expect(ratio(d("1"), Decimal.zero())).toBe(0);
  });

  it("gives the spread only when both sides have levels", () => {
    expect(spread(bids, asks)?.toPlainString()).toBe("0.04");
    expect(spread([], asks)).toBeNull();
  });

  it("builds the depth curve from the best level outward", () => {
    const curve = depthCurve(bids, asks, 2);
    expect(curve.bids.map((p) => [p.price.toPlainString(), p.cumulative.toPlainString()])).toEqual([
      ["100.07", "1"],
      ["100.03", "3"],
    ]);
    expect(curve.asks.map((p) => p.cumulative.toPlainString())).toEqual(["1.5", "1.75"]);
  });
});

describe("following the book channel", () => {
  function connected() {
    const sockets: FakeSocket[] = [];
    const client = new RealtimeClient({
      url: "ws://edge/v1/ws",
      createSocket: (url) => {
        const socket = new FakeSocket(url);
        sockets.push(socket);
        return socket;
      },
      clock: new FakeClock(),
    });
    client.start();
    sockets[0].open();
    return { client, socket: sockets[0] };
  }

  const frame = (data: BookUpdate) => ({ channel: "book", data });

  it("subscribes again after a gap and skips the changes in flight until the snapshot", () => {
    const { client, socket } = connected();
    const book = new OrderBook("BTC_USD");
    let changes = 0;
    const stop = followBook((s) => client.subscribe(s), book, () => {
      changes += 1;
    });
    expect(socket.frames("subscribe", "book")).toEqual([{ op: "subscribe", channel: "book", market: "BTC_USD" }]);
    socket.receive(frame({ market: "BTC_USD", sequence: "4", snapshot: true, bids: [{ price: "10.00", quantity: "1" }] }));
    socket.receive(frame({ market: "BTC_USD", sequence: "5", bids: [{ price: "10.00", quantity: "2" }] }));
    socket.receive(frame({ market: "ETH_USD", sequence: "9", bids: [{ price: "10.00", quantity: "7" }] }));
    expect(changes).toBe(2);
    socket.receive(frame({ market: "BTC_USD", sequence: "7", bids: [{ price: "10.00", quantity: "3" }] }));
    expect(socket.frames("unsubscribe", "book")).toHaveLength(1);
    expect(socket.frames("subscribe", "book")).toHaveLength(2);
    // A change sent before the server saw the new subscription starts no second one.
    socket.receive(frame({ market: "BTC_USD", sequence: "8", bids: [{ price: "10.00", quantity: "4" }] }));
    expect(socket.frames("subscribe", "book")).toHaveLength(2);
    expect(changes).toBe(2);
    expect(plain(book.levels("bids"))).toEqual([["10", "2"]]);
    socket.receive(frame({ market: "BTC_USD", sequence: "8", snapshot: true, bids: [{ price: "10.00", quantity: "4" }] }));
    socket.receive(frame({ market: "BTC_USD", sequence: "9", asks: [{ price: "11.00", quantity: "1" }] }));
    expect(changes).toBe(4);
    expect(plain(book.levels("bids"))).toEqual([["10", "4"]]);
    expect(plain(book.levels("asks"))).toEqual([["11", "1"]]);
    stop();
    expect(socket.frames("unsubscribe", "book")).toHaveLength(2);
    socket.receive(frame({ market: "BTC_USD", sequence: "10", asks: [{ price: "11.00", quantity: "0" }] }));
    expect(changes).toBe(4);
  });
});
