import { describe, expect, it } from "vitest";
import { EventCursor, storedEventCursor } from "../../src/lib/events";
import { RealtimeClient } from "../../src/lib/realtime";
import type { KeyValueStorage } from "../../src/lib/session";
import { FakeClock, FakeSocket } from "./fakes";

class MemoryStorage implements KeyValueStorage {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
}

describe("event cursor", () => {
  it("starts from the first event without a position", () => {
    const cursor = new EventCursor(null);
    expect(cursor.hasPosition()).toBe(false);
    expect(cursor.fromSequence()).toBe("0");
  });

  it("drops repeats, including events sharing a sequence number", () => {
    const cursor = new EventCursor(null);
    expect(cursor.accept({ sequence: "5" })).toBe(true);
    expect(cursor.accept({ sequence: "5", index: 1 })).toBe(true);
    expect(cursor.accept({ sequence: "5" })).toBe(false);
    expect(cursor.accept({ sequence: "5", index: 1 })).toBe(false);
    expect(cursor.accept({ sequence: "4" })).toBe(false);
    expect(cursor.accept({ sequence: "5", index: 2 })).toBe(true);
    expect(cursor.accept({ sequence: "9" })).toBe(true);
    expect(cursor.accept({ sequence: "garbage" })).toBe(false);
  });

  it("resumes after the sequence before the last one so a split sequence is completed", () => {
    const cursor = new EventCursor(null);
    cursor.accept({ sequence: "12" });
    expect(cursor.fromSequence()).toBe("11");
  });

  it("takes a baseline only when it has no position", () => {
    const cursor = new EventCursor(null);
    cursor.setBaseline("30");
    expect(cursor.fromSequence()).toBe("29");
    expect(cursor.accept({ sequence: "30", index: 3 })).toBe(false);
    expect(cursor.accept({ sequence: "31" })).toBe(true);
    cursor.setBaseline("100");
    expect(cursor.fromSequence()).toBe("30");
  });

  it("survives a reload through storage, per user", () => {
    const storage = new MemoryStorage();
    const first = storedEventCursor(storage, "user-1");
    first.accept({ sequence: "77", index: 1 });
    const reloaded = storedEventCursor(storage, "user-1");
    expect(reloaded.position()).toEqual({ sequence: 77n, index: 1 });
    expect(reloaded.accept({ sequence: "77", index: 1 })).toBe(false);
    expect(reloaded.accept({ sequence: "78" })).toBe(true);
    expect(storedEventCursor(storage, "user-2").hasPosition()).toBe(false);
  });
});

describe("events across a reconnect", () => {
  it("loses and repeats nothing when the server replays from the resume point", () => {
    const clock = new FakeClock();
    const sockets: FakeSocket[] = [];
    const client = new RealtimeClient({
      url: "ws://edge/v1/ws",
      createSocket: (url) => {
        const socket = new FakeSocket(url);
        sockets.push(socket);
        return socket;
      },
      clock,
      random: () => 1,
    });
    const cursor = new EventCursor(null);
    cursor.setBaseline("10");
    const handled: string[] = [];
    client.setToken("tok");
    client.subscribe({
      channel: "events",
      private: true,
      params: () => ({ fromSequence: cursor.fromSequence() }),
      onData: (data) => {
        const event = data as { sequence: string; index?: number };
        if (cursor.accept(event)) handled.push(`${event.sequence}.${event.index ?? 0}`);
      },
    });
    // The server's log: sequence 12 carries two events.
    const log = [
      { sequence: "11" },
      { sequence: "12" },
      { sequence: "12", index: 1 },
      { sequence: "13" },
    ];
    const serveFrom = (socket: FakeSocket, from: string, upTo: number) => {
      for (const event of log.slice(0, upTo)) {
        if (BigInt(event.sequence) > BigInt(from)) socket.receive({ channel: "events", data: event });
      }
    };
    client.start();
    sockets[0].open();
    sockets[0].receive({ type: "ack", op: "auth" });
    const first = sockets[0].frames("subscribe", "events")[0];
    expect(first.fromSequence).toBe("9");
    // The connection drops in the middle of sequence 12.
    serveFrom(sockets[0], first.fromSequence as string, 2);
    sockets[0].drop();
    clock.advance(10_000);
    sockets[1].open();
    sockets[1].receive({ type: "ack", op: "auth" });
    const second = sockets[1].frames("subscribe", "events")[0];
    expect(second.fromSequence).toBe("11");
    serveFrom(sockets[1], second.fromSequence as string, log.length);
    expect(handled).toEqual(["11.0", "12.0", "12.1", "13.0"]);
  });
});
