import { describe, expect, it } from "vitest";
import { accountModes, marginAlert } from "../../src/lib/margin";

describe("margin level alerts", () => {
  it("warns below 100% and alarms below 50%, exactly at the edges", () => {
    expect(marginAlert("3127.96")).toBe("none");
    expect(marginAlert("100")).toBe("none");
    expect(marginAlert("99.999999")).toBe("warning");
    expect(marginAlert("50")).toBe("warning");
    expect(marginAlert("49.999999")).toBe("danger");
    expect(marginAlert("-5")).toBe("danger");
  });

  it("stays quiet without a level", () => {
    expect(marginAlert(undefined)).toBe("none");
    expect(marginAlert("")).toBe("none");
  });
});

describe("account modes", () => {
  it("names the margin and position modes", () => {
    expect(
      accountModes({ marginMode: "MARGIN_MODE_CROSS", positionMode: "POSITION_MODE_NETTING" }),
    ).toBe("Cross · Netting");
    expect(
      accountModes({ marginMode: "MARGIN_MODE_ISOLATED", positionMode: "POSITION_MODE_HEDGING" }),
    ).toBe("Isolated · Hedging");
  });

  it("takes an unreported mode as isolated or hedging, and shows a dash before the account", () => {
    expect(accountModes({ positionMode: "POSITION_MODE_NETTING" })).toBe("Isolated · Netting");
    expect(accountModes({})).toBe("Isolated · Hedging");
    expect(accountModes(null)).toBe("—");
  });
});
