import { describe, expect, it } from "vitest";
import { Decimal, DecimalError, groupThousands } from "../../src/lib/decimal";

const d = (text: string) => Decimal.parse(text);

describe("parse and format", () => {
  it("round-trips decimal strings exactly", () => {
    for (const text of ["0", "64250.15", "-0.5", "0.000001", "123456789012345678901234567890.123456"]) {
      expect(d(text).toString()).toBe(text);
    }
  });

  it("keeps or strips trailing zeros on request", () => {
    expect(d("1.500").toString()).toBe("1.500");
    expect(d("1.500").toPlainString()).toBe("1.5");
    expect(d("2.000").toPlainString()).toBe("2");
    expect(d("-0.0100").toPlainString()).toBe("-0.01");
  });

  it("rejects text that is not a plain decimal", () => {
    for (const text of ["", "abc", "1e5", "1.2.3", "0x10", "1,5", ".5", "5.", "NaN", "Infinity"]) {
      expect(() => d(text)).toThrow(DecimalError);
      expect(Decimal.tryParse(text)).toBeNull();
    }
  });

  it("groups thousands without touching the fraction", () => {
    expect(groupThousands("1234567.891011")).toBe("1,234,567.891011");
    expect(groupThousands("-1000")).toBe("-1,000");
    expect(groupThousands("999.5")).toBe("999.5");
  });
});

describe("arithmetic", () => {
  it("adds and subtracts across scales", () => {
    expect(d("0.1").add(d("0.2")).toString()).toBe("0.3");
    expect(d("64250.15").sub(d("6425.015")).toString()).toBe("57825.135");
  });

  it("multiplies exactly", () => {
    expect(d("0.01").mul(d("64250.15")).toPlainString()).toBe("642.5015");
    expect(d("-1.5").mul(d("2.5")).toPlainString()).toBe("-3.75");
  });

  it("divides with the named rounding", () => {
    expect(d("2").div(d("3"), 6, "floor").toString()).toBe("0.666666");
    expect(d("2").div(d("3"), 6, "ceil").toString()).toBe("0.666667");
    expect(d("-2").div(d("3"), 6, "floor").toString()).toBe("-0.666667");
    expect(d("-2").div(d("3"), 6, "ceil").toString()).toBe("-0.666666");
    expect(d("-2").div(d("3"), 6, "trunc").toString()).toBe("-0.666666");
    expect(d("6").div(d("3"), 2, "ceil").toString()).toBe("2.00");
  });

  it("refuses to divide by zero", () => {
    expect(() => d("1").div(d("0.00"), 2, "floor")).toThrow(DecimalError);
  });

  it("rounds to a step in both directions", () => {
    expect(d("57825.135").roundToStep(d("0.01"), "ceil").toString()).toBe("57825.14");
    expect(d("57825.135").roundToStep(d("0.01"), "floor").toString()).toBe("57825.13");
    expect(d("0.03112").roundToStep(d("0.0001"), "floor").toString()).toBe("0.0311");
    expect(d("7").roundToStep(d("0.5"), "floor").toString()).toBe("7.0");
  });

  it("tests multiples and compares across scales", () => {
    expect(d("0.0300").isMultipleOf(d("0.01"))).toBe(true);
    expect(d("0.015").isMultipleOf(d("0.01"))).toBe(false);
    expect(d("1.10").eq(d("1.1"))).toBe(true);
    expect(d("-0.01").lt(d("0"))).toBe(true);
    expect(d("100").gt(d("99.999999"))).toBe(true);
  });

  it("rescales with rounding", () => {
    expect(d("99.90898325").rescale(6, "ceil").toString()).toBe("99.908984");
    expect(d("1.5").rescale(3, "floor").toString()).toBe("1.500");
  });

  it("rounds halves away from zero", () => {
    expect(d("2.345").rescale(2, "halfUp").toString()).toBe("2.35");
    expect(d("2.3449").rescale(2, "halfUp").toString()).toBe("2.34");
    expect(d("-2.345").rescale(2, "halfUp").toString()).toBe("-2.35");
    expect(d("-2.3449").rescale(2, "halfUp").toString()).toBe("-2.34");
    expect(d("7").div(d("-2"), 0, "halfUp").toString()).toBe("-4");
    expect(d("5").div(d("3"), 0, "halfUp").toString()).toBe("2");
  });
});
