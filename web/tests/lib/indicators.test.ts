import { describe, expect, it } from "vitest";
import { bollinger, ema, rsi, sma } from "../../src/lib/indicators";

function rounded(series: (number | null)[], digits = 4): (number | null)[] {
  return series.map((value) => (value === null ? null : Number(value.toFixed(digits))));
}

describe("indicators", () => {
  it("averages the last values", () => {
    expect(sma([1, 2, 3, 4, 5], 3)).toEqual([null, null, 2, 3, 4]);
    expect(sma([10, 20], 1)).toEqual([10, 20]);
    expect(sma([1, 2], 3)).toEqual([null, null]);
  });

  it("seeds the exponential average with the simple one, then weighs 2 / (n + 1)", () => {
    // Seed (10 + 11 + 12) / 3 = 11, then 13·½ + 11·½ = 12, then 20·½ + 12·½ = 16.
    expect(ema([10, 11, 12, 13, 20], 3)).toEqual([null, null, 11, 12, 16]);
  });

  it("puts the bands two population deviations around the average", () => {
    // Mean 2, variance (1 + 0 + 1) / 3, deviation 0.8165; then mean 10/3, deviation 1.2472.
    const bands = bollinger([1, 2, 3, 5], 3, 2);
    expect(rounded(bands.middle)).toEqual([null, null, 2, 3.3333]);
    expect(rounded(bands.upper)).toEqual([null, null, 3.633, 5.8278]);
    expect(rounded(bands.lower)).toEqual([null, null, 0.367, 0.8389]);
  });

  it("smooths gains and losses the way Wilder did", () => {
    // Changes +1 +1 -1 +1 +1: first averages 2/3 and 1/3 (RS 2), then 7/9 and 2/9 (RS 3.5),
    // then 23/27 and 4/27 (RS 5.75).
    expect(rounded(rsi([1, 2, 3, 2, 3, 4], 3), 3)).toEqual([null, null, null, 66.667, 77.778, 85.185]);
    expect(rsi([1, 2, 3, 4], 2)).toEqual([null, null, 100, 100]);
    expect(rsi([], 14)).toEqual([]);
  });

  it("refuses a period that is not a positive integer", () => {
    expect(() => sma([1], 0)).toThrow(RangeError);
    expect(() => ema([1], 1.5)).toThrow(RangeError);
  });
});
