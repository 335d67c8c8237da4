import {
  CandlestickSeries,
  ColorType,
  CrosshairMode,
  type IChartApi,
  type IPriceLine,
  type ISeriesApi,
  LineStyle,
  type UTCTimestamp,
  createChart,
} from "lightweight-charts";
import { useEffect, useMemo, useRef, useState } from "react";
import type { ApiClient } from "../lib/api";
import { chartLines } from "../lib/chartLines";
import { describeError } from "../lib/errors";
import { formatPrice } from "../lib/format";
import type { RealtimeClient } from "../lib/realtime";
import type { Candle, CandleInterval, CandleUpdate, Order, Position, Ticker } from "../lib/types";
import type { InstrumentView } from "../state/instruments";
import { type QuoteStore, useQuote } from "../state/quotes";
import { ChartLines } from "./ChartLines";
import { dayChange, formatChange } from "./InstrumentList";
import type { Actions } from "./TradingScreen";

export const INTERVALS: readonly { readonly value: CandleInterval; readonly label: string }[] = [
  { value: "CANDLE_INTERVAL_1M", label: "1m" },
  { value: "CANDLE_INTERVAL_5M", label: "5m" },
  { value: "CANDLE_INTERVAL_15M", label: "15m" },
  { value: "CANDLE_INTERVAL_1H", label: "1h" },
  { value: "CANDLE_INTERVAL_4H", label: "4h" },
  { value: "CANDLE_INTERVAL_1D", label: "1d" },
];

const CANDLE_LIMIT = 500;
const BID_COLOR = "#f6465d";
const ASK_COLOR = "#0ecb81";

interface Bar {
  readonly time: UTCTimestamp;
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
}

/**
 * Convert a candle for drawing. The chart library draws with JavaScript numbers, so this is
 * the one place where prices become floats: for pixels only, never for any amount.
 */
function toBar(candle: Candle): Bar | null {
  const millis = Date.parse(candle.openTime);
  const values = [candle.open, candle.high, candle.low, candle.close].map(Number);
  if (Number.isNaN(millis) || values.some((value) => !Number.isFinite(value))) {
    return null;
  }
  const [open, high, low, close] = values;
  return { time: Math.floor(millis / 1000) as UTCTimestamp, open, high, low, close };
}

interface ChartPanelProps {
  readonly api: ApiClient;
  readonly realtime: RealtimeClient;
  readonly quotes: QuoteStore;
  readonly view: InstrumentView | null;
  readonly ticker: Ticker | undefined;
  readonly interval: CandleInterval;
  readonly onIntervalChange: (interval: CandleInterval) => void;
  readonly positions: readonly Position[];
  readonly orders: readonly Order[];
  readonly actions: Actions;
}

/** The selected instrument's header, interval picker and live candlestick chart. */
export function ChartPanel(props: ChartPanelProps) {
  const { view, quotes, ticker, interval, onIntervalChange } = props;
  const entry = useQuote(quotes, view?.spec.symbol ?? null);
  const digits = view?.priceDigits ?? 2;
  const change = dayChange(ticker, entry);
  return (
    <section className="chart-panel panel" aria-label="Chart">
      <div className="chart-head">
        <div className="chart-symbol">
          <h2 data-testid="chart-symbol">{view?.spec.symbol ?? "—"}</h2>
          <span className="muted">{view?.instrument.displayName ?? ""}</span>
        </div>
        <div className="chart-quote">
          <span className="quote-label">Bid</span>
          <span className="num price down-text" data-testid="chart-bid">
            {formatPrice(entry?.quote.bid, digits)}
          </span>
          <span className="quote-label">Ask</span>
          <span className="num price up-text" data-testid="chart-ask">
            {formatPrice(entry?.quote.ask, digits)}
          </span>
          <span className="quote-label">24h</span>
          <span
            className={`num change ${change === null ? "" : change.isNegative() ? "down" : "up"}`}
          >
            {formatChange(change)}
          </span>
        </div>
        <div className="segmented intervals" role="group" aria-label="Candle interval">
          {INTERVALS.map((option) => (
            <button
              key={option.value}
              type="button"
              className={option.value === interval ? "active" : ""}
              aria-pressed={option.value === interval}
              onClick={() => onIntervalChange(option.value)}
              data-testid={`interval-${option.label}`}
            >
              {option.label}
            </button>
          ))}
        </div>
      </div>
      {view === null ? (
        <div className="chart-empty">Loading instruments…</div>
      ) : (
        <PriceChart {...props} view={view} />
      )}
    </section>
  );
}

interface PriceChartProps extends ChartPanelProps {
  readonly view: InstrumentView;
}

function PriceChart(props: PriceChartProps) {
  const { api, realtime, quotes, view, interval, positions, orders, actions } = props;
  const container = useRef<HTMLDivElement>(null);
  const chartRef = useRef<IChartApi | null>(null);
  const seriesRef = useRef<ISeriesApi<"Candlestick"> | null>(null);
  // The drawn chart, once it exists: the lines' effects need it (children's effects run first).
  const [drawn, setDrawn] = useState<{ chart: IChartApi; series: ISeriesApi<"Candlestick"> } | null>(null);
  const [status, setStatus] = useState<{ count: number; last: string; error: string | null }>({
    count: 0,
    last: "",
    error: null,
  });
  const symbol = view.spec.symbol;
  const lines = useMemo(() => chartLines(symbol, positions, orders), [symbol, positions, orders]);

  // One chart for the component's life; options follow the instrument.
  useEffect(() => {
    const element = container.current;
    if (element === null) return;
    const chart = createChart(element, {
      autoSize: true,
      layout: {
        background: { type: ColorType.Solid, color: "#0f1318" },
        textColor: "#8b949e",
        fontFamily: "Inter, system-ui, sans-serif",
        // The library's licence asks for its attribution on the page.
        attributionLogo: true,
      },
      grid: {
        vertLines: { color: "#1b2129" },
        horzLines: { color: "#1b2129" },
      },
      crosshair: { mode: CrosshairMode.Normal },
      rightPriceScale: { borderColor: "#242b35" },
      timeScale: { borderColor: "#242b35", timeVisible: true, secondsVisible: false },
    });
    chartRef.current = chart;
    seriesRef.current = chart.addSeries(CandlestickSeries, {
      upColor: ASK_COLOR,
      downColor: BID_COLOR,
      borderVisible: false,
      wickUpColor: ASK_COLOR,
      wickDownColor: BID_COLOR,
    });
    setDrawn({ chart, series: seriesRef.current });
    return () => {
      setDrawn(null);
      chart.remove();
      chartRef.current = null;
      seriesRef.current = null;
    };
  }, []);

  useEffect(() => {
    seriesRef.current?.applyOptions({
      priceFormat: {
        type: "price",
        precision: view.priceDigits,
        minMove: Number(view.spec.tickSize.toPlainString()),
      },
    });
  }, [view]);

  // Candles: REST history, then live updates (buffered until the history is drawn).
  useEffect(() => {
    const series = seriesRef.current;
    if (series === null) return;
    let cancelled = false;
    let lastTime: number | null = null;
    let loaded = false;
    const early: Bar[] = [];
    let count = 0;

    const apply = (bar: Bar, close: string) => {
      if (lastTime !== null && bar.time < lastTime) {
        return;
      }
      if (lastTime === null || bar.time > lastTime) {
        count += 1;
      }
      series.update(bar);
      lastTime = bar.time;
      setStatus({ count, last: close, error: null });
    };

    series.setData([]);
    setStatus({ count: 0, last: "", error: null });
    const unsubscribe = realtime.subscribe({
      channel: "candles",
      private: false,
      params: () => ({ symbol, interval }),
      onData: (data) => {
        const update = data as CandleUpdate | null;
        if (
          update === null ||
          typeof update !== "object" ||
          update.symbol !== symbol ||
          update.interval !== interval ||
          update.candle === undefined
        ) {
          return;
        }
        const bar = toBar(update.candle);
        if (bar === null) return;
        if (loaded) {
          apply(bar, update.candle.close);
        } else {
          early.push(bar);
        }
      },
    });

    api
      .getCandles(symbol, interval, CANDLE_LIMIT)
      .then((candles) => {
        if (cancelled) return;
        const bars: Bar[] = [];
        for (const candle of candles) {
          const bar = toBar(candle);
          if (bar !== null && (bars.length === 0 || bar.time > bars[bars.length - 1].time)) {
            bars.push(bar);
          }
        }
        series.setData(bars);
        count = bars.length;
        lastTime = bars.length === 0 ? null : bars[bars.length - 1].time;
        loaded = true;
        const lastClose = candles.length === 0 ? "" : candles[candles.length - 1].close;
        setStatus({ count, last: lastClose, error: null });
        for (const bar of early) {
          apply(bar, String(bar.close));
        }
        early.length = 0;
        chartRef.current?.timeScale().scrollToRealTime();
      })
      .catch((error: unknown) => {
        if (!cancelled) setStatus({ count: 0, last: "", error: describeError(error) });
      });

    return () => {
      cancelled = true;
      unsubscribe();
    };
  }, [api, realtime, symbol, interval]);

  // Bid and ask lines, moved on every quote without re-rendering.
  useEffect(() => {
    const series = seriesRef.current;
    if (series === null) return;
    let bidLine: IPriceLine | null = null;
    let askLine: IPriceLine | null = null;
    const draw = () => {
      const entry = quotes.get(symbol);
      if (entry === undefined) return;
      const bid = Number(entry.quote.bid);
      const ask = Number(entry.quote.ask);
      if (bidLine === null || askLine === null) {
        const common = { lineWidth: 1, lineStyle: LineStyle.Dashed, axisLabelVisible: true } as const;
        bidLine = series.createPriceLine({ ...common, price: bid, color: BID_COLOR, title: "Bid" });
        askLine = series.createPriceLine({ ...common, price: ask, color: ASK_COLOR, title: "Ask" });
      } else {
        bidLine.applyOptions({ price: bid });
        askLine.applyOptions({ price: ask });
      }
    };
    draw();
    const unsubscribe = quotes.subscribe(symbol, draw);
    return () => {
      unsubscribe();
      if (bidLine !== null) series.removePriceLine(bidLine);
      if (askLine !== null) series.removePriceLine(askLine);
    };
  }, [quotes, symbol]);

  return (
    <div className="chart-wrap">
      <div
        ref={container}
        className="chart"
        data-testid="chart"
        data-candle-count={status.count}
        data-last-close={status.last}
        role="img"
        aria-label={`${symbol} candlestick chart, ${status.count} candles`}
      />
      {drawn !== null && (
        <ChartLines
          chart={drawn.chart}
          series={drawn.series}
          container={container}
        lines={lines}
        view={view}
          api={api}
          actions={actions}
        />
      )}
      {status.error !== null && (
        <div className="chart-error" role="alert">
          {status.error}
        </div>
      )}
      {status.error === null && status.count === 0 && (
        <div className="chart-empty overlay">No candles yet</div>
      )}
    </div>
  );
}
