import { useId, useState } from "react";
import { type BookSide, type LadderRow, type Level, ladder, spread } from "../lib/book";
import { Decimal } from "../lib/decimal";
import { DASH, formatPrice } from "../lib/format";
import { type MarketSpec, groupSteps } from "../lib/spot";
import type { SpotOrder } from "../lib/types";

const ROWS_PER_SIDE = 12;

interface OrderBookLadderProps {
  readonly spec: MarketSpec;
  readonly bids: readonly Level[];
  readonly asks: readonly Level[];
  /** The caller's open orders in this market, marked on their levels. */
  readonly ownOrders: readonly SpotOrder[];
  readonly onPickPrice: (price: string) => void;
}

/** The grouped prices of the caller's open orders on one side, as the ladder groups them. */
function ownPrices(orders: readonly SpotOrder[], side: BookSide, step: Decimal): Set<string> {
  const wanted = side === "bids" ? "SIDE_BUY" : "SIDE_SELL";
  const prices = new Set<string>();
  for (const order of orders) {
    const price = Decimal.tryParse(order.price);
    if (order.side === wanted && price !== null) {
      prices.add(price.roundToStep(step, side === "bids" ? "floor" : "ceil").toPlainString());
    }
  }
  return prices;
}

/** The order book as a price ladder: asks above, bids below, cumulative depth bars. */
export function OrderBookLadder({ spec, bids, asks, ownOrders, onPickPrice }: OrderBookLadderProps) {
  const id = useId();
  const steps = groupSteps(spec.tickSize);
  const [stepIndex, setStepIndex] = useState(0);
  const step = steps[Math.min(stepIndex, steps.length - 1)];
  const rows = ladder(bids, asks, step, ROWS_PER_SIDE);
  const gap = spread(bids, asks);
  const quantityDigits = spec.lotStep.significantScale();
  const priceDigits = step.significantScale();
  const mineBids = ownPrices(ownOrders, "bids", step);
  const mineAsks = ownPrices(ownOrders, "asks", step);

  const renderRow = (row: LadderRow, side: BookSide, mine: Set<string>) => {
    const price = row.price.toPlainString();
    const own = mine.has(price);
    return (
      <li key={price}>
        <button
          type="button"
          className={`ladder-row ${side}`}
          onClick={() => onPickPrice(row.price.toFixed(spec.priceDigits))}
          title="Use this price in the order ticket"
          data-testid={`ladder-${side === "bids" ? "bid" : "ask"}`}
          data-price={price}
          data-mine={own ? "true" : undefined}
        >
          <span
            className="depth-bar"
            style={{ width: `${(row.depth * 100).toFixed(2)}%` }}
            aria-hidden="true"
          />
          <span className="num ladder-price">
            {own && <span className="own-mark" aria-label="your order">●</span>}
            {formatPrice(price, priceDigits)}
          </span>
          <span className="num" data-testid="ladder-quantity">
            {formatPrice(row.quantity.toString(), quantityDigits)}
          </span>
          <span className="num muted">{formatPrice(row.cumulative.toString(), quantityDigits)}</span>
        </button>
      </li>
    );
  };

  return (
    <div className="ladder" data-testid="order-book">
      <div className="ladder-head">
        <span className="panel-title">Order book</span>
        <label htmlFor={`${id}-group`} className="visually-hidden">
          Group prices by
        </label>
        <select
          id={`${id}-group`}
          value={stepIndex}
          onChange={(event) => setStepIndex(Number(event.target.value))}
          data-testid="ladder-group"
        >
          {steps.map((value, index) => (
            <option key={value.toPlainString()} value={index}>
              {value.toPlainString()}
            </option>
          ))}
        </select>
      </div>
      <div className="ladder-columns muted">
        <span>Price (USD)</span>
        <span className="num">Size ({spec.baseAsset})</span>
        <span className="num">Total</span>
      </div>
      <ol className="ladder-side asks" aria-label="Asks">
        {[...rows.asks].reverse().map((row) => renderRow(row, "asks", mineAsks))}
      </ol>
      <div className="ladder-spread" data-testid="ladder-spread">
        {bids.length === 0 && asks.length === 0 ? (
          <span className="muted">The book is empty</span>
        ) : (
          <>
            <span className="muted">Spread</span>
            <span className="num">{gap === null ? DASH : formatPrice(gap.toString(), spec.priceDigits)}</span>
          </>
        )}
      </div>
      <ol className="ladder-side bids" aria-label="Bids">
        {rows.bids.map((row) => renderRow(row, "bids", mineBids))}
      </ol>
    </div>
  );
}
