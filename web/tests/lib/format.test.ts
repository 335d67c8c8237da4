import { describe, expect, it } from "vitest";
import { Decimal } from "../../src/lib/decimal";
import {
  formatExactMoney,
  formatExactSignedMoney,
  formatMoney,
  formatPercent,
  formatPrice,
  formatQuantity,
  formatSignedMoney,
  percentChange,
} from "../../src/lib/format";

describe("display formatting", () => {
  it("shows money to the cent, halves away from zero", () => {
    expect(formatMoney("5000")).toBe("5,000.00");
    expect(formatMoney("4887.525022")).toBe("4,887.53");
    expect(formatMoney("64.250150")).toBe("64.25");
    expect(formatMoney("64.245")).toBe("64.25");
    expect(formatMoney("64.244999")).toBe("64.24");
    expect(formatMoney("-1234567.005")).toBe("-1,234,567.01");
    expect(formatMoney("-0.004")).toBe("0.00");
    expect(formatMoney(undefined)).toBe("—");
    expect(formatMoney("oops")).toBe("—");
  });

  it("shows the exact money, for the hover, with at least two decimals", () => {
    expect(formatExactMoney("4887.525022")).toBe("4,887.525022");
    expect(formatExactMoney("64.250150")).toBe("64.25015");
    expect(formatExactMoney("5000")).toBe("5,000.00");
    expect(formatExactMoney(undefined)).toBe("—");
  });

  it("signs gains and keeps losses negative", () => {
    expect(formatSignedMoney("14.700000")).toBe("+14.70");
    expect(formatSignedMoney("5.5275")).toBe("+5.53");
    expect(formatSignedMoney("-10.3")).toBe("-10.30");
    expect(formatSignedMoney("0")).toBe("0.00");
    expect(formatExactSignedMoney("5.5275")).toBe("+5.5275");
    expect(formatExactSignedMoney("-1000.125")).toBe("-1,000.125");
  });

  it("pads prices to the tick without dropping digits", () => {
    expect(formatPrice("64000", 2)).toBe("64,000.00");
    expect(formatPrice("150.5", 3)).toBe("150.500");
    expect(formatPrice("57825.135", 2)).toBe("57,825.135");
  });

  it("shows a margin level with two decimals, or a dash with no positions", () => {
    expect(formatPercent("3127.965942")).toBe("3,127.96%");
    expect(formatPercent("")).toBe("—");
    expect(formatPercent(undefined)).toBe("—");
  });

  it("shows quantities without trailing zeros", () => {
    expect(formatQuantity("0.0200")).toBe("0.02");
    expect(formatQuantity("1234567.50")).toBe("1,234,567.5");
  });

  it("computes a percentage change exactly", () => {
    expect(percentChange(Decimal.parse("200"), Decimal.parse("203"))?.toString()).toBe("1.50");
    expect(percentChange(Decimal.parse("3"), Decimal.parse("2"))?.toString()).toBe("-33.33");
    expect(percentChange(Decimal.parse("0"), Decimal.parse("2"))).toBeNull();
  });
});
