import { type KeyboardEvent, memo } from "react";
import { Decimal } from "../lib/decimal";
import { DASH, formatPrice, percentChange } from "../lib/format";
import type { Ticker } from "../lib/types";
import type { InstrumentView } from "../state/instruments";
import { type QuoteEntry, type QuoteStore, useQuote } from "../state/quotes";

interface InstrumentListProps {
  readonly instruments: readonly InstrumentView[];
  readonly quotes: QuoteStore;
  readonly tickers: Readonly<Record<string, Ticker>>;
  readonly selected: string | null;
  readonly onSelect: (symbol: string) => void;
}

/** 24h change in percent: live from the quote's mid against the ticker's open. */
export function dayChange(ticker: Ticker | undefined, entry: QuoteEntry | undefined): Decimal | null {
  if (ticker === undefined) {
    return null;
  }
  const open = Decimal.tryParse(ticker.open);
  if (open !== null && entry !== undefined) {
    const mid = entry.bid.add(entry.ask).div(Decimal.fromInteger(2), entry.bid.scale + 1, "trunc");
    return percentChange(open, mid);
  }
  return Decimal.tryParse(ticker.changePercent);
}

export function formatChange(change: Decimal | null): string {
  if (change === null) {
    return DASH;
  }
  const text = change.rescale(2, "trunc").toString();
  return change.isPositive() ? `+${text}%` : `${text}%`;
}

interface RowProps {
  readonly view: InstrumentView;
  readonly quotes: QuoteStore;
  readonly ticker: Ticker | undefined;
  readonly active: boolean;
  readonly onSelect: (symbol: string) => void;
}

const InstrumentRow = memo(function InstrumentRow({ view, quotes, ticker, active, onSelect }: RowProps) {
  const symbol = view.spec.symbol;
  const entry = useQuote(quotes, symbol);
  const change = dayChange(ticker, entry);
  const tick = entry?.direction ?? 0;
  return (
    <li>
      <button
        type="button"
        className={`instrument ${active ? "active" : ""}`}
        aria-pressed={active}
        onClick={() => onSelect(symbol)}
        data-testid={`instrument-${symbol}`}
      >
        <span className="instrument-name">
          <strong>{symbol}</strong>
          <small>{view.instrument.displayName ?? ""}</small>
        </span>
        <span className={`num price tick-${tick}`} data-testid={`bid-${symbol}`}>
          {formatPrice(entry?.quote.bid, view.priceDigits)}
        </span>
        <span className={`num price tick-${tick}`} data-testid={`ask-${symbol}`}>
          {formatPrice(entry?.quote.ask, view.priceDigits)}
        </span>
        <span
          className={`num change ${change === null ? "" : change.isNegative() ? "down" : "up"}`}
          data-testid={`change-${symbol}`}
        >
          {formatChange(change)}
        </span>
      </button>
    </li>
  );
});

/** Instruments with live bid/ask and 24h change; choosing one selects it for chart and panel. */
export function InstrumentList({ instruments, quotes, tickers, selected, onSelect }: InstrumentListProps) {
  // Up and down arrows move the selection, as in a list box.
  const onKeyDown = (event: KeyboardEvent<HTMLElement>) => {
    const step = event.key === "ArrowDown" ? 1 : event.key === "ArrowUp" ? -1 : 0;
    if (step === 0 || instruments.length === 0) return;
    event.preventDefault();
    const current = instruments.findIndex((view) => view.spec.symbol === selected);
    const next = instruments[(current + step + instruments.length) % instruments.length];
    onSelect(next.spec.symbol);
    const button = event.currentTarget.querySelector<HTMLButtonElement>(
      `[data-testid="instrument-${next.spec.symbol}"]`,
    );
    button?.focus();
  };
  return (
    <nav className="instruments panel" aria-label="Instruments" onKeyDown={onKeyDown}>
      <div className="panel-title instruments-head" aria-hidden="true">
        <span>Instrument</span>
        <span className="num">Bid</span>
        <span className="num">Ask</span>
        <span className="num">24h</span>
      </div>
      <ul>
        {instruments.map((view) => (
          <InstrumentRow
            key={view.spec.symbol}
            view={view}
            quotes={quotes}
            ticker={tickers[view.spec.symbol]}
            active={view.spec.symbol === selected}
            onSelect={onSelect}
          />
        ))}
      </ul>
    </nav>
  );
}
