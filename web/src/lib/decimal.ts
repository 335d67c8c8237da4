/**
 * Exact decimal numbers on BigInt: a value is `units / 10^scale`.
 *
 * Money, prices and quantities never pass through a JavaScript number; they are parsed from
 * and formatted to decimal strings exactly, and every division names its rounding direction.
 */

const DECIMAL_PATTERN = /^([+-]?)(\d+)(?:\.(\d+))?$/;
const MAX_SCALE = 40;

export class DecimalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DecimalError";
  }
}

/** How a result that does not fit the target scale is rounded. */
/** Toward minus infinity, plus infinity, zero, or to the nearest with halves away from zero. */
export type Rounding = "floor" | "ceil" | "trunc" | "halfUp";

const TEN = 10n;

function pow10(exponent: number): bigint {
  return TEN ** BigInt(exponent);
}

/** Divide two integers rounding in the given direction (the divisor must not be zero). */
function divideIntegers(numerator: bigint, denominator: bigint, rounding: Rounding): bigint {
  if (denominator === 0n) {
    throw new DecimalError("division by zero");
  }
  const quotient = numerator / denominator; // BigInt division truncates toward zero.
  const remainder = numerator % denominator;
  if (remainder === 0n || rounding === "trunc") {
    return quotient;
  }
  const negative = numerator < 0n !== denominator < 0n;
  if (rounding === "halfUp") {
    const twice = 2n * (remainder < 0n ? -remainder : remainder);
    const whole = denominator < 0n ? -denominator : denominator;
    if (twice < whole) return quotient;
    return negative ? quotient - 1n : quotient + 1n;
  }
  if (rounding === "floor") {
    return negative ? quotient - 1n : quotient;
  }
  return negative ? quotient : quotient + 1n;
}

export class Decimal {
  readonly units: bigint;
  readonly scale: number;

  private constructor(units: bigint, scale: number) {
    this.units = units;
    this.scale = scale;
  }

  /** Build a decimal from integer units at a scale: `of(12345n, 2)` is 123.45. */
  static of(units: bigint, scale = 0): Decimal {
    if (!Number.isInteger(scale) || scale < 0) {
      throw new DecimalError(`invalid scale ${scale}`);
    }
    return new Decimal(units, scale);
  }

  /** Parse a plain decimal string ("64250.15", "-0.5"); anything else is a DecimalError. */
  static parse(text: string): Decimal {
    const match = DECIMAL_PATTERN.exec(text.trim());
    if (match === null) {
      throw new DecimalError(`not a decimal number: ${JSON.stringify(text)}`);
    }
    const [, sign, whole, fraction = ""] = match;
    if (fraction.length > MAX_SCALE) {
      throw new DecimalError(`too many fraction digits: ${text}`);
    }
    const magnitude = BigInt(`${whole}${fraction}`);
    return new Decimal(sign === "-" ? -magnitude : magnitude, fraction.length);
  }

  /** Parse, returning null instead of throwing for text that is not a decimal. */
  static tryParse(text: string | undefined | null): Decimal | null {
    if (text === undefined || text === null || text.trim() === "") {
      return null;
    }
    try {
      return Decimal.parse(text);
    } catch (error) {
      if (error instanceof DecimalError) {
        return null;
      }
      throw error;
    }
  }

  static zero(): Decimal {
    return new Decimal(0n, 0);
  }

  static fromInteger(value: number | bigint): Decimal {
    if (typeof value === "number" && !Number.isSafeInteger(value)) {
      throw new DecimalError(`not a safe integer: ${value}`);
    }
    return new Decimal(BigInt(value), 0);
  }

  /** Express this value at a larger scale, exactly. */
  private widen(scale: number): bigint {
    return this.units * pow10(scale - this.scale);
  }

  private static align(a: Decimal, b: Decimal): [bigint, bigint, number] {
    const scale = Math.max(a.scale, b.scale);
    return [a.widen(scale), b.widen(scale), scale];
  }

  add(other: Decimal): Decimal {
    const [a, b, scale] = Decimal.align(this, other);
    return new Decimal(a + b, scale);
  }

  sub(other: Decimal): Decimal {
    const [a, b, scale] = Decimal.align(this, other);
    return new Decimal(a - b, scale);
  }

  mul(other: Decimal): Decimal {
    return new Decimal(this.units * other.units, this.scale + other.scale);
  }

  /** Divide, giving a result with `scale` fraction digits rounded as asked. */
  div(other: Decimal, scale: number, rounding: Rounding): Decimal {
    if (other.units === 0n) {
      throw new DecimalError("division by zero");
    }
    // this / other at `scale` = this.units * 10^(scale + other.scale - this.scale) / other.units
    const shift = scale + other.scale - this.scale;
    const numerator = shift >= 0 ? this.units * pow10(shift) : this.units;
    const denominator = shift >= 0 ? other.units : other.units * pow10(-shift);
    return Decimal.of(divideIntegers(numerator, denominator, rounding), scale);
  }

  neg(): Decimal {
    return new Decimal(-this.units, this.scale);
  }

  abs(): Decimal {
    return this.units < 0n ? this.neg() : this;
  }

  /** Change the number of fraction digits, rounding when digits are dropped. */
  rescale(scale: number, rounding: Rounding): Decimal {
    if (scale >= this.scale) {
      return Decimal.of(this.widen(scale), scale);
    }
    return Decimal.of(divideIntegers(this.units, pow10(this.scale - scale), rounding), scale);
  }

  /** Round to a multiple of `step` (a positive decimal such as a tick or lot size). */
  roundToStep(step: Decimal, rounding: Rounding): Decimal {
    if (step.units <= 0n) {
      throw new DecimalError("step must be positive");
    }
    const [value, unit] = Decimal.align(this, step);
    const multiples = divideIntegers(value, unit, rounding);
    return Decimal.of(multiples * step.units, step.scale);
  }

  /** Whether this value is a whole multiple of `step`. */
  isMultipleOf(step: Decimal): boolean {
    if (step.units === 0n) {
      return false;
    }
    const [value, unit] = Decimal.align(this, step);
    return value % unit === 0n;
  }

  compare(other: Decimal): -1 | 0 | 1 {
    const [a, b] = Decimal.align(this, other);
    return a < b ? -1 : a > b ? 1 : 0;
  }

  eq(other: Decimal): boolean {
    return this.compare(other) === 0;
  }

  lt(other: Decimal): boolean {
    return this.compare(other) < 0;
  }

  lte(other: Decimal): boolean {
    return this.compare(other) <= 0;
  }

  gt(other: Decimal): boolean {
    return this.compare(other) > 0;
  }

  gte(other: Decimal): boolean {
    return this.compare(other) >= 0;
  }

  isZero(): boolean {
    return this.units === 0n;
  }

  isNegative(): boolean {
    return this.units < 0n;
  }

  isPositive(): boolean {
    return this.units > 0n;
  }

  /** Number of fraction digits actually needed (trailing zeros ignored). */
  significantScale(): number {
    let units = this.units;
    let scale = this.scale;
    while (scale > 0 && units % TEN === 0n) {
      units /= TEN;
      scale -= 1;
    }
    return scale;
  }

  /** Format with exactly `digits` fraction digits (rounding as asked when digits are dropped). */
  toFixed(digits: number, rounding: Rounding = "trunc"): string {
    return this.rescale(digits, rounding).toString();
  }

  /** Format with the scale it carries; trailing zeros are kept. */
  toString(): string {
    const negative = this.units < 0n;
    const digits = (negative ? -this.units : this.units).toString().padStart(this.scale + 1, "0");
    const whole = digits.slice(0, digits.length - this.scale);
    const fraction = digits.slice(digits.length - this.scale);
    const sign = negative ? "-" : "";
    return this.scale === 0 ? `${sign}${whole}` : `${sign}${whole}.${fraction}`;
  }

  /** Format with trailing fraction zeros removed ("1.500" -> "1.5", "2.0" -> "2"). */
  toPlainString(): string {
    return this.rescale(this.significantScale(), "trunc").toString();
  }
}

/** The decimal number of a step such as "0.01": how many fraction digits it needs. */
export function stepScale(step: Decimal): number {
  return step.significantScale();
}

/** Insert thousands separators into a formatted decimal string. */
export function groupThousands(text: string): string {
  const negative = text.startsWith("-");
  const body = negative ? text.slice(1) : text;
  const [whole, fraction] = body.split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}${grouped}${fraction === undefined ? "" : `.${fraction}`}`;
}
