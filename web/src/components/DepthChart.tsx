import { type DepthPoint, type Level, depthCurve, ratio } from "../lib/book";
import type { Decimal } from "../lib/decimal";
import { formatPrice } from "../lib/format";
import type { MarketSpec } from "../lib/spot";
import { ASK_COLOR, BID_COLOR } from "./candleChart";

const WIDTH = 400;
const HEIGHT = 100;
const LEVELS = 50;

interface DepthChartProps {
  readonly spec: MarketSpec;
  readonly bids: readonly Level[];
  readonly asks: readonly Level[];
}

/**
 * The SVG path of one side's cumulative depth as steps from the best price outward, closed
 * along the bottom. Coordinates are numbers, for drawing only.
 */
function stepPath(
  points: readonly DepthPoint[],
  x: (price: Decimal) => number,
  y: (cumulative: Decimal) => number,
  edge: number,
): string {
  if (points.length === 0) return "";
  const parts = [`M ${x(points[0].price)} ${HEIGHT}`];
  points.forEach((point, index) => {
    parts.push(`L ${x(point.price)} ${y(point.cumulative)}`);
    const next = points[index + 1];
    parts.push(`L ${next === undefined ? edge : x(next.price)} ${y(point.cumulative)}`);
  });
  parts.push(`L ${edge} ${HEIGHT} Z`);
  return parts.join(" ");
}

/** Cumulative bids and asks around the spread. */
export function DepthChart({ spec, bids, asks }: DepthChartProps) {
  const curve = depthCurve(bids, asks, LEVELS);
  const lastBid = curve.bids[curve.bids.length - 1];
  const lastAsk = curve.asks[curve.asks.length - 1];
  const low = lastBid?.price ?? curve.asks[0]?.price;
  const high = lastAsk?.price ?? curve.bids[0]?.price;
  const deepest = [lastBid?.cumulative, lastAsk?.cumulative].reduce<Decimal | undefined>(
    (most, value) => (value === undefined || (most !== undefined && most.gte(value)) ? most : value),
    undefined,
  );
  const drawable = low !== undefined && high !== undefined && deepest !== undefined;
  const x = (price: Decimal) =>
    !drawable || high.eq(low) ? WIDTH / 2 : ratio(price.sub(low), high.sub(low)) * WIDTH;
  const y = (cumulative: Decimal) =>
    drawable ? HEIGHT - ratio(cumulative, deepest) * HEIGHT : HEIGHT;
  return (
    <div
      className="depth-chart"
      data-testid="depth-chart"
      data-bid-levels={curve.bids.length}
      data-ask-levels={curve.asks.length}
    >
      {drawable ? (
        <>
          <svg
            viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
            preserveAspectRatio="none"
            role="img"
            aria-label={`Market depth: ${curve.bids.length} bid and ${curve.asks.length} ask levels`}
          >
            <path d={stepPath(curve.bids, x, y, 0)} fill={`${ASK_COLOR}33`} stroke={ASK_COLOR} />
            <path d={stepPath(curve.asks, x, y, WIDTH)} fill={`${BID_COLOR}33`} stroke={BID_COLOR} />
          </svg>
          <div className="depth-axis muted">
            <span className="num">{formatPrice(low.toString(), spec.priceDigits)}</span>
            <span className="num">{formatPrice(high.toString(), spec.priceDigits)}</span>
          </div>
        </>
      ) : (
        <div className="chart-empty">No depth yet</div>
      )}
    </div>
  );
}
