import { describe, expect, it } from "vitest";
import { newClientOrderId } from "../../src/lib/ids";

describe("client order ids", () => {
  it("are unique, short enough for the API and made of safe characters", () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newClientOrderId()));
    expect(ids.size).toBe(1000);
    for (const id of ids) {
      expect(id).toMatch(/^web-[0-9a-f]{32}$/);
      expect(id.length).toBeLessThanOrEqual(64);
    }
  });
});
