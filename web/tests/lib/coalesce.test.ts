import { describe, expect, it } from "vitest";
import { coalesce } from "../../src/lib/coalesce";

function gate() {
  let open = () => undefined as void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

describe("coalesce", () => {
  it("runs once now and once more for any number of calls meanwhile", async () => {
    const gates = [gate(), gate(), gate()];
    let runs = 0;
    const refresh = coalesce(async () => {
      const index = runs;
      runs += 1;
      await gates[index].promise;
    });
    const first = refresh();
    const waiting = [refresh(), refresh(), refresh()];
    expect(runs).toBe(1);
    gates[0].open();
    await first;
    await Promise.resolve();
    expect(runs).toBe(2);
    gates[1].open();
    await Promise.all(waiting);
    expect(runs).toBe(2);
    gates[2].open();
    await refresh();
    expect(runs).toBe(3);
  });

  it("still runs the queued call after a failed run, and reports failures to their callers", async () => {
    let runs = 0;
    const refresh = coalesce(async () => {
      runs += 1;
      if (runs === 1) throw new Error("network");
    });
    const first = refresh();
    const second = refresh();
    await expect(first).rejects.toThrow("network");
    await expect(second).resolves.toBeUndefined();
    expect(runs).toBe(2);
  });
});
