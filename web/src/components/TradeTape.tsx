import { DASH, formatPrice } from "../lib/format";
import type { MarketSpec } from "../lib/spot";
import type { MarketTrade } from "../lib/types";

interface TradeTapeProps {
  readonly spec: MarketSpec;
  readonly trades: readonly MarketTrade[];
}

function clock(time: string | undefined): string {
  const date = time === undefined ? null : new Date(time);
  return date === null || Number.isNaN(date.getTime())
    ? DASH
    : date.toLocaleTimeString(undefined, { hour12: false });
}

/** The market's public trades, newest first, coloured by the side that took. */
export function TradeTape({ spec, trades }: TradeTapeProps) {
  const quantityDigits = spec.lotStep.significantScale();
  return (
    <div className="tape" data-testid="trade-tape">
      <div className="ladder-head">
        <span className="panel-title">Trades</span>
      </div>
      {trades.length === 0 ? (
        <p className="empty">No trades yet</p>
      ) : (
        <table className="grid compact">
          <thead>
            <tr>
              <th className="num">Price</th>
              <th className="num">Size</th>
              <th className="num">Time</th>
            </tr>
          </thead>
          <tbody>
            {trades.map((trade) => (
              <tr key={trade.id} data-testid="tape-row" data-trade-id={trade.id}>
                <td
                  className={`num ${trade.takerSide === "SIDE_SELL" ? "down" : "up"}`}
                  data-testid="tape-price"
                >
                  {formatPrice(trade.price, spec.priceDigits)}
                </td>
                <td className="num" data-testid="tape-quantity">
                  {formatPrice(trade.quantity, quantityDigits)}
                </td>
                <td className="num muted">{clock(trade.time)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
