/**
 * A market's order book as the `book` channel keeps it (a snapshot, then changes with a
 * sequence rising by one), and the ladder and depth curve drawn from it. Exact decimals
 * throughout; only the bar widths become numbers, for pixels.
 */

import { Decimal } from "./decimal";
import type { Subscription } from "./realtime";
import type { BookLevel, BookUpdate } from "./types";

export type BookSide = "bids" | "asks";

export interface Level {
  readonly price: Decimal;
  readonly quantity: Decimal;
}

/** One ladder row: a (grouped) price, its quantity and the quantity up to it from the best. */
export interface LadderRow extends Level {
  readonly cumulative: Decimal;
  /** Cumulative quantity over the largest cumulative quantity shown on either side, 0..1. */
  readonly depth: number;
}

function parseLevel(level: BookLevel): Level | null {
  const price = Decimal.tryParse(level.price);
  const quantity = Decimal.tryParse(level.quantity);
  if (price === null || quantity === null || !price.isPositive() || quantity.isNegative()) {
    return null;
  }
  return { price, quantity };
}

/** Best first: the highest bid, the lowest ask. */
function bestFirst(side: BookSide): (a: Level, b: Level) => number {
  return side === "bids" ? (a, b) => b.price.compare(a.price) : (a, b) => a.price.compare(b.price);
}

/** The book of one market, rebuilt from the snapshot and the changes of its stream. */
export class OrderBook {
  readonly market: string;
  private sequenceValue: bigint | null = null;
  private readonly sides: Record<BookSide, Map<string, Level>> = {
    bids: new Map(),
    asks: new Map(),
  };

  constructor(market: string) {
    this.market = market;
  }

  /** The sequence of the last message applied; null before the first snapshot. */
  get sequence(): bigint | null {
    return this.sequenceValue;
  }

  /**
   * Apply a snapshot or a change. Return false, changing nothing, for a change that does not
   * follow the last message: the caller must resubscribe to get a new snapshot.
   */
  apply(update: BookUpdate): boolean {
    // Protobuf JSON omits a zero int64.
    const sequence = BigInt(update.sequence ?? "0");
    if (update.snapshot === true) {
      this.sides.bids.clear();
      this.sides.asks.clear();
    } else if (this.sequenceValue === null || sequence !== this.sequenceValue + 1n) {
      return false;
    }
    for (const side of ["bids", "asks"] as const) {
      const levels = this.sides[side];
      for (const raw of update[side] ?? []) {
        const level = parseLevel(raw);
        if (level === null) continue;
        const key = level.price.toPlainString();
        if (level.quantity.isZero()) {
          levels.delete(key);
        } else {
          levels.set(key, level);
        }
      }
    }
    this.sequenceValue = sequence;
    return true;
  }

  /** The levels of one side, best first. */
  levels(side: BookSide): Level[] {
    return [...this.sides[side].values()].sort(bestFirst(side));
  }
}

/**
 * Merge levels into price groups of `step` (a multiple of the tick): bids are grouped down
 * and asks up, so a group never shows a better price than its orders have. Best first.
 */
export function groupLevels(levels: readonly Level[], side: BookSide, step: Decimal): Level[] {
  const rounding = side === "bids" ? "floor" : "ceil";
  const groups = new Map<string, Level>();
  for (const level of levels) {
    const price = level.price.roundToStep(step, rounding);
    const key = price.toPlainString();
    const current = groups.get(key);
    groups.set(key, {
      price,
      quantity: current === undefined ? level.quantity : current.quantity.add(level.quantity),
    });
  }
  return [...groups.values()].sort(bestFirst(side));
}

function accumulate(levels: readonly Level[]): { level: Level; cumulative: Decimal }[] {
  let cumulative = Decimal.zero();
  return levels.map((level) => {
    cumulative = cumulative.add(level.quantity);
    return { level, cumulative };
  });
}

/** A fraction 0..1 as a number, for widths and coordinates only. */
export function ratio(part: Decimal, whole: Decimal): number {
  if (!whole.isPositive()) return 0;
  return Number(part.div(whole, 4, "floor").toString());
}

/**
 * The ladder: up to `rows` groups of `step` per side, best first, each with its cumulative
 * quantity and depth bar on a scale shared by both sides.
 */
export function ladder(
  bids: readonly Level[],
  asks: readonly Level[],
  step: Decimal,
  rows: number,
): Record<BookSide, LadderRow[]> {
  const sides = {
    bids: accumulate(groupLevels(bids, "bids", step).slice(0, rows)),
    asks: accumulate(groupLevels(asks, "asks", step).slice(0, rows)),
  };
  const deepest = [...sides.bids, ...sides.asks].reduce(
    (most, row) => (row.cumulative.gt(most) ? row.cumulative : most),
    Decimal.zero(),
  );
  const rowsOf = (side: BookSide) =>
    sides[side].map(({ level, cumulative }) => ({
      ...level,
      cumulative,
      depth: ratio(cumulative, deepest),
    }));
  return { bids: rowsOf("bids"), asks: rowsOf("asks") };
}

/** Best ask minus best bid, or null when a side is empty. */
export function spread(bids: readonly Level[], asks: readonly Level[]): Decimal | null {
  const bid = bids[0];
  const ask = asks[0];
  return bid === undefined || ask === undefined ? null : ask.price.sub(bid.price);
}

export interface DepthPoint {
  readonly price: Decimal;
  readonly cumulative: Decimal;
}

/** The depth curve: for each side's first `levels` levels, the quantity up to that price. */
export function depthCurve(
  bids: readonly Level[],
  asks: readonly Level[],
  levels: number,
): Record<BookSide, DepthPoint[]> {
  const curve = (side: readonly Level[]) =>
    accumulate(side.slice(0, levels)).map(({ level, cumulative }) => ({
      price: level.price,
      cumulative,
    }));
  return { bids: curve(bids), asks: curve(asks) };
}

/** The subscribing half of the WebSocket client. */
export type Subscribe = (subscription: Subscription) => () => void;

/**
 * Keep `book` from the `book` channel: apply each message and call `changed`; after a gap in
 * the sequence subscribe again, which starts over with a snapshot, and ignore the changes
 * still in flight until it arrives. Return the function that stops following.
 */
export function followBook(subscribe: Subscribe, book: OrderBook, changed: () => void): () => void {
  let awaitingSnapshot = false;
  let stop: () => void = () => undefined;
  const start = () => {
    stop = subscribe({
      channel: "book",
      private: false,
      params: () => ({ market: book.market }),
      onData: (data) => {
        if (typeof data !== "object" || data === null) return;
        const update = data as BookUpdate;
        if (update.market !== book.market) return;
        if (awaitingSnapshot && update.snapshot !== true) return;
        if (book.apply(update)) {
          awaitingSnapshot = false;
          changed();
          return;
        }
        awaitingSnapshot = true;
        stop();
        start();
      },
    });
  };
  start();
  return () => stop();
}
