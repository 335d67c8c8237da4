import { describe, expect, it } from "vitest";
import { RealtimeClient, type Subscription, backoffDelay } from "../../src/lib/realtime";
import { FakeClock, FakeSocket } from "./fakes";

function setup() {
  const clock = new FakeClock();
  const sockets: FakeSocket[] = [];
  const errors: unknown[] = [];
  const client = new RealtimeClient({
    url: "ws://edge/v1/ws",
    createSocket: (url) => {
      const socket = new FakeSocket(url);
      sockets.push(socket);
      return socket;
    },
    clock,
    random: () => 1,
    initialBackoffMs: 500,
    maxBackoffMs: 8_000,
    heartbeatMs: 10_000,
    idleTimeoutMs: 25_000,
    onError: (error) => errors.push(error),
  });
  const last = () => sockets[sockets.length - 1];
  return { clock, sockets, client, last, errors };
}

function collector(channel: Subscription["channel"], isPrivate: boolean, params: Record<string, unknown> = {}) {
  const received: unknown[] = [];
  const subscription: Subscription = {
    channel,
    private: isPrivate,
    params: () => params,
    onData: (data) => received.push(data),
  };
  return { subscription, received };
}

describe("backoff", () => {
  it("doubles up to the cap with jitter in the upper half", () => {
    expect(backoffDelay(0, 500, 8000, () => 1)).toBe(500);
    expect(backoffDelay(0, 500, 8000, () => 0)).toBe(250);
    expect(backoffDelay(3, 500, 8000, () => 1)).toBe(4000);
    expect(backoffDelay(10, 500, 8000, () => 1)).toBe(8000);
    expect(backoffDelay(1000, 500, 8000, () => 0.5)).toBe(6000);
  });
});

describe("realtime client", () => {
  it("subscribes public channels on open and private ones after the auth ack", () => {
    const { client, last } = setup();
    const prices = collector("prices", false, { symbols: ["BTCUSD"] });
    const positions = collector("positions", true);
    client.setToken("tok-1");
    client.subscribe(prices.subscription);
    client.subscribe(positions.subscription);
    client.start();
    expect(client.getState()).toBe("connecting");
    last().open();
    expect(client.getState()).toBe("online");
    expect(last().sent[0]).toEqual({ op: "auth", token: "tok-1" });
    expect(last().frames("subscribe", "prices")).toEqual([{ op: "subscribe", channel: "prices", symbols: ["BTCUSD"] }]);
    expect(last().frames("subscribe", "positions")).toHaveLength(0);
    last().receive({ type: "ack", op: "auth" });
    expect(last().frames("subscribe", "positions")).toHaveLength(1);
    last().receive({ channel: "prices", data: { symbol: "BTCUSD", bid: "1.00", ask: "1.01" } });
    last().receive({ channel: "positions", data: { positions: [] } });
    expect(prices.received).toEqual([{ symbol: "BTCUSD", bid: "1.00", ask: "1.01" }]);
    expect(positions.received).toEqual([{ positions: [] }]);
  });

  it("reconnects with growing backoff and re-subscribes everything", () => {
    const { client, clock, sockets, last } = setup();
    const events = collector("events", true, { fromSequence: "7" });
    client.setToken("tok");
    client.subscribe(events.subscription);
    client.start();
    last().drop();
    expect(client.getState()).toBe("offline");
    expect(clock.pendingDelays()).toEqual([500]);
    clock.advance(500);
    expect(sockets).toHaveLength(2);
    last().drop();
    expect(clock.pendingDelays()).toEqual([1000]);
    clock.advance(1000);
    last().drop();
    expect(clock.pendingDelays()).toEqual([2000]);
    clock.advance(2000);
    expect(sockets).toHaveLength(4);
    last().open();
    last().receive({ type: "ack", op: "auth" });
    expect(last().frames("subscribe", "events")).toEqual([{ op: "subscribe", channel: "events", fromSequence: "7" }]);
    // A working connection resets the backoff.
    last().drop();
    expect(clock.pendingDelays()).toEqual([500]);
  });

  it("sends the current parameters on each resubscription", () => {
    const { client, clock, last } = setup();
    let from = "0";
    client.setToken("tok");
    client.subscribe({ channel: "events", private: true, params: () => ({ fromSequence: from }), onData: () => undefined });
    client.start();
    last().open();
    last().receive({ type: "ack", op: "auth" });
    from = "41";
    last().drop();
    clock.advance(500);
    last().open();
    last().receive({ type: "ack", op: "auth" });
    expect(last().frames("subscribe", "events")[0]).toMatchObject({ fromSequence: "41" });
  });

  it("unsubscribes with the same parameters and stops delivering", () => {
    const { client, last } = setup();
    const candles = collector("candles", false, { symbol: "ETHUSD", interval: "CANDLE_INTERVAL_1M" });
    client.start();
    last().open();
    const stop = client.subscribe(candles.subscription);
    expect(last().frames("subscribe", "candles")).toHaveLength(1);
    stop();
    expect(last().frames("unsubscribe", "candles")).toEqual([
      { op: "unsubscribe", channel: "candles", symbol: "ETHUSD", interval: "CANDLE_INTERVAL_1M" },
    ]);
    last().receive({ channel: "candles", data: { symbol: "ETHUSD" } });
    expect(candles.received).toEqual([]);
  });

  it("pings when quiet and replaces a silent socket", () => {
    const { client, clock, sockets, last } = setup();
    client.start();
    last().open();
    clock.advance(10_000);
    expect(last().frames("ping")).toHaveLength(1);
    last().receive({ type: "pong" });
    clock.advance(10_000);
    expect(last().frames("ping")).toHaveLength(2);
    clock.advance(20_000);
    expect(sockets[0].closed).toBe(true);
    expect(client.getState()).toBe("offline");
    clock.advance(500);
    expect(sockets).toHaveLength(2);
  });

  it("re-authenticates when the token changes and reports server errors", () => {
    const { client, last, errors } = setup();
    client.setToken("old");
    client.start();
    last().open();
    client.setToken("new");
    expect(last().frames("auth")).toEqual([{ op: "auth", token: "old" }, { op: "auth", token: "new" }]);
    last().receive({ type: "error", error: { code: 16, reason: "TOKEN_EXPIRED", message: "expired" } });
    expect(errors).toEqual([{ code: 16, reason: "TOKEN_EXPIRED", message: "expired" }]);
  });

  it("ignores garbage frames and frames of replaced sockets", () => {
    const { client, clock, sockets, last } = setup();
    const prices = collector("prices", false);
    client.subscribe(prices.subscription);
    client.start();
    last().open();
    last().onmessage?.({ data: "not json" });
    last().onmessage?.({ data: "[1,2]" });
    last().drop();
    clock.advance(500);
    sockets[0].onmessage?.({ data: JSON.stringify({ channel: "prices", data: 1 }) });
    expect(prices.received).toEqual([]);
  });

  it("stops for good: no reconnect after stop", () => {
    const { client, clock, sockets, last } = setup();
    client.start();
    last().open();
    client.stop();
    expect(sockets[0].closed).toBe(true);
    clock.advance(60_000);
    expect(sockets).toHaveLength(1);
    expect(client.getState()).toBe("offline");
  });

  it("resubscribes private channels after a re-auth that follows an expiry", () => {
    const { client, last } = setup();
    const positions = collector("positions", true);
    client.setToken("old");
    client.subscribe(positions.subscription);
    client.start();
    last().open();
    last().receive({ type: "ack", op: "auth", userId: "u1" });
    expect(last().frames("subscribe", "positions")).toHaveLength(1);
    last().receive({
      type: "error",
      channels: ["positions"],
      error: { code: 16, reason: "TOKEN_EXPIRED", message: "send auth again" },
    });
    client.setToken("new");
    last().receive({ type: "ack", op: "auth", userId: "u1" });
    expect(last().frames("subscribe", "positions")).toHaveLength(2);
  });

  it("resumes an events subscription the server asked to resume", () => {
    const { client, last } = setup();
    let from = "5";
    client.setToken("tok");
    client.subscribe({ channel: "events", private: true, params: () => ({ fromSequence: from }), onData: () => undefined });
    client.start();
    last().open();
    last().receive({ type: "ack", op: "auth" });
    from = "90";
    last().receive({
      type: "error",
      channel: "events",
      fromSequence: "95",
      error: { code: 10, reason: "RESUME_REQUIRED", message: "fell behind" },
    });
    expect(last().frames("subscribe", "events").map((f) => f.fromSequence)).toEqual(["5", "90"]);
  });
});
