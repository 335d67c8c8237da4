/** Live quotes per symbol, shared by the components that show them without re-rendering all. */

import { useCallback, useSyncExternalStore } from "react";
import { Decimal } from "../lib/decimal";
import type { Quote } from "../lib/types";

export interface QuoteEntry {
  readonly quote: Quote;
  readonly bid: Decimal;
  readonly ask: Decimal;
  /** When this browser received it (ms since the epoch). */
  readonly receivedAt: number;
  /** Move of the bid against the previous quote: 1 up, -1 down, 0 unchanged. */
  readonly direction: -1 | 0 | 1;
}

type Listener = () => void;

export class QuoteStore {
  private readonly entries = new Map<string, QuoteEntry>();
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly anyListeners = new Set<Listener>();
  private readonly now: () => number;

  constructor(now: () => number = () => Date.now()) {
    this.now = now;
  }

  get(symbol: string): QuoteEntry | undefined {
    return this.entries.get(symbol);
  }

  /**
   * Take a quote of the live stream; malformed prices are ignored. Stream quotes arrive in
   * order, and their sequence numbers count the market service's quotes, not the engine's,
   * so they are never compared with those of a REST snapshot.
   */
  put(quote: Quote): void {
    this.store(quote);
  }

  /** Take a quote of a REST snapshot, unless the stream already delivered one. */
  seed(quote: Quote): void {
    if (!this.entries.has(quote.symbol)) {
      this.store(quote);
    }
  }

  private store(quote: Quote): void {
    const bid = Decimal.tryParse(quote.bid);
    const ask = Decimal.tryParse(quote.ask);
    if (bid === null || ask === null) {
      return;
    }
    const current = this.entries.get(quote.symbol);
    const direction = current === undefined ? 0 : bid.compare(current.bid);
    this.entries.set(quote.symbol, { quote, bid, ask, receivedAt: this.now(), direction });
    for (const listener of this.listeners.get(quote.symbol) ?? []) {
      listener();
    }
    for (const listener of this.anyListeners) {
      listener();
    }
  }

  subscribe(symbol: string | null, listener: Listener): () => void {
    if (symbol === null) {
      this.anyListeners.add(listener);
      return () => {
        this.anyListeners.delete(listener);
      };
    }
    let set = this.listeners.get(symbol);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(symbol, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }
}

/** The live quote of one symbol; re-renders only when that symbol ticks. */
export function useQuote(store: QuoteStore, symbol: string | null): QuoteEntry | undefined {
  const subscribe = useCallback(
    (listener: Listener) => (symbol === null ? () => undefined : store.subscribe(symbol, listener)),
    [store, symbol],
  );
  const read = useCallback(() => (symbol === null ? undefined : store.get(symbol)), [store, symbol]);
  return useSyncExternalStore(subscribe, read, read);
}
