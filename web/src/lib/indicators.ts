/**
 * Chart indicators over closing prices. They are drawn, never traded on, so plain floats do;
 * each series has one value per input, null until enough inputs exist.
 */

export type Series = (number | null)[];

function checkPeriod(period: number): void {
  if (!Number.isInteger(period) || period < 1) {
    throw new RangeError(`period must be a positive integer, got ${period}`);
  }
}

/** Simple moving average of the last `period` values. */
export function sma(values: readonly number[], period: number): Series {
  checkPeriod(period);
  const out: Series = [];
  let sum = 0;
  values.forEach((value, index) => {
    sum += value;
    if (index >= period) sum -= values[index - period];
    out.push(index >= period - 1 ? sum / period : null);
  });
  return out;
}

/** Exponential moving average, seeded with the simple average of the first `period` values. */
export function ema(values: readonly number[], period: number): Series {
  checkPeriod(period);
  const weight = 2 / (period + 1);
  const seed = sma(values, period);
  const out: Series = [];
  let previous: number | null = null;
  values.forEach((value, index) => {
    if (previous === null) {
      previous = seed[index];
    } else {
      previous = value * weight + previous * (1 - weight);
    }
    out.push(previous);
  });
  return out;
}

export interface Bands {
  readonly middle: Series;
  readonly upper: Series;
  readonly lower: Series;
}

/** Bollinger bands: the simple average and `width` population standard deviations around it. */
export function bollinger(values: readonly number[], period: number, width: number): Bands {
  const middle = sma(values, period);
  const upper: Series = [];
  const lower: Series = [];
  middle.forEach((mean, index) => {
    if (mean === null) {
      upper.push(null);
      lower.push(null);
      return;
    }
    let squares = 0;
    for (let i = index - period + 1; i <= index; i += 1) {
      squares += (values[i] - mean) ** 2;
    }
    const deviation = Math.sqrt(squares / period);
    upper.push(mean + width * deviation);
    lower.push(mean - width * deviation);
  });
  return { middle, upper, lower };
}

/** Relative strength index with Wilder's smoothing; 100 when there was no loss. */
export function rsi(values: readonly number[], period: number): Series {
  checkPeriod(period);
  const out: Series = values.length === 0 ? [] : [null];
  let gain = 0;
  let loss = 0;
  for (let index = 1; index < values.length; index += 1) {
    const change = values[index] - values[index - 1];
    const up = Math.max(change, 0);
    const down = Math.max(-change, 0);
    if (index <= period) {
      gain += up / period;
      loss += down / period;
    } else {
      gain = (gain * (period - 1) + up) / period;
      loss = (loss * (period - 1) + down) / period;
    }
    if (index < period) {
      out.push(null);
    } else {
      out.push(loss === 0 ? 100 : 100 - 100 / (1 + gain / loss));
    }
  }
  return out;
}
