import { type IChartApi, LineSeries, type IPriceLine, type ISeriesApi, LineStyle } from "lightweight-charts";
import { useEffect, useMemo, useRef, useState } from "react";
import type { ApiClient } from "../lib/api";
import { chartLines } from "../lib/chartLines";
import { describeError } from "../lib/errors";
import { formatPrice } from "../lib/format";
import { type Series, bollinger, ema, rsi, sma } from "../lib/indicators";
import type { RealtimeClient } from "../lib/realtime";
import type { CandleInterval, Order, Position, Ticker } from "../lib/types";
import type { InstrumentView } from "../state/instruments";
import { type QuoteStore, useQuote } from "../state/quotes";
import { ASK_COLOR, type Bar, BID_COLOR, createCandleChart, followCandles } from "./candleChart";
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

const INDICATOR_PANE_PX = 90;

export type IndicatorName = "ma" | "ema" | "bb" | "rsi";

interface IndicatorLine {
  readonly key: string;
  readonly color: string;
  /** The chart pane: 0 over the candles, 1 below them. */
  readonly pane: number;
  readonly compute: (closes: readonly number[]) => Series;
}

/** The indicators on offer, each drawn as one or more lines. */
export const INDICATORS: readonly {
  readonly name: IndicatorName;
  readonly label: string;
  readonly lines: readonly IndicatorLine[];
}[] = [
  { name: "ma", label: "MA 20", lines: [{ key: "ma", color: "#f0b90b", pane: 0, compute: (c) => sma(c, 20) }] },
  { name: "ema", label: "EMA 50", lines: [{ key: "ema", color: "#4c8dff", pane: 0, compute: (c) => ema(c, 50) }] },
  {
    name: "bb",
    label: "BB 20·2",
    lines: [
      { key: "bb-upper", color: "#a78bfa", pane: 0, compute: (c) => bollinger(c, 20, 2).upper },
      { key: "bb-middle", color: "#7c6bbf", pane: 0, compute: (c) => bollinger(c, 20, 2).middle },
      { key: "bb-lower", color: "#a78bfa", pane: 0, compute: (c) => bollinger(c, 20, 2).lower },
    ],
  },
  { name: "rsi", label: "RSI 14", lines: [{ key: "rsi", color: "#e879f9", pane: 1, compute: (c) => rsi(c, 14) }] },
];
interface ChartPanelProps {
  readonly api: ApiClient;
  readonly realtime: RealtimeClient;
  readonly quotes: QuoteStore;
  readonly view: InstrumentView | null;
  readonly ticker: Ticker | undefined;
  readonly interval: CandleInterval;
  readonly onIntervalChange: (interval: CandleInterval) => void;
  readonly indicators: ReadonlySet<IndicatorName>;
  readonly onToggleIndicator: (name: IndicatorName) => void;
  readonly positions: readonly Position[];
  readonly orders: readonly Order[];
  readonly actions: Actions;
}

/** The selected instrument's header, interval picker and live candlestick chart. */
export function ChartPanel(props: ChartPanelProps) {
  const { view, quotes, ticker, interval, onIntervalChange, indicators, onToggleIndicator } = props;
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
        <div className="segmented indicators" role="group" aria-label="Indicators">
          {INDICATORS.map((option) => (
            <button
              key={option.name}
              type="button"
              className={indicators.has(option.name) ? "active" : ""}
              aria-pressed={indicators.has(option.name)}
              onClick={() => onToggleIndicator(option.name)}
              data-testid={`indicator-${option.name}`}
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
  const { api, realtime, quotes, view, interval, positions, orders, actions, indicators } = props;
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
  // The drawn bars, oldest first, for the indicators.
  const bars = useRef<Bar[]>([]);
  const indicatorSeries = useRef(new Map<string, ISeriesApi<"Line">>());
  const redrawIndicators = useRef(() => undefined as void);
  redrawIndicators.current = () => {
    const closes = bars.current.map((bar) => bar.close);
    for (const option of INDICATORS) {
      for (const line of option.lines) {
        const target = indicatorSeries.current.get(line.key);
        if (target === undefined) continue;
        const values = line.compute(closes);
        target.setData(
          bars.current.map((bar, index) => {
            const value = values[index];
            return value === null ? { time: bar.time } : { time: bar.time, value };
          }),
        );
      }
    }
  };
  const lines = useMemo(() => chartLines(symbol, positions, orders), [symbol, positions, orders]);

  // One chart for the component's life; options follow the instrument.
  useEffect(() => {
    const element = container.current;
    if (element === null) return;
    const { chart, series } = createCandleChart(element);
    chartRef.current = chart;
    seriesRef.current = series;
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
    let count = 0;
    series.setData([]);
    bars.current = [];
    redrawIndicators.current();
    setStatus({ count: 0, last: "", error: null });
    return followCandles(api, realtime, symbol, interval, {
      history: (loadedBars, lastClose) => {
        series.setData(loadedBars);
        bars.current = [...loadedBars];
        redrawIndicators.current();
        count = loadedBars.length;
        setStatus({ count, last: lastClose, error: null });
        chartRef.current?.timeScale().scrollToRealTime();
      },
      update: (bar, close, added) => {
        series.update(bar);
        if (added) {
          count += 1;
          bars.current.push(bar);
        } else {
          bars.current[bars.current.length - 1] = bar;
        }
        redrawIndicators.current();
        setStatus({ count, last: close, error: null });
      },
      failed: (error) => setStatus({ count: 0, last: "", error: describeError(error) }),
    });
  }, [api, realtime, symbol, interval]);

  // Indicator lines follow the toggles; their values follow the bars.
  useEffect(() => {
    if (drawn === null) return;
    const wanted = new Map<string, IndicatorLine>();
    for (const option of INDICATORS) {
      if (indicators.has(option.name)) {
        for (const line of option.lines) wanted.set(line.key, line);
      }
    }
    for (const [key, target] of indicatorSeries.current) {
      if (!wanted.has(key)) {
        drawn.chart.removeSeries(target);
        indicatorSeries.current.delete(key);
      }
    }
    for (const [key, line] of wanted) {
      if (indicatorSeries.current.has(key)) continue;
      const target = drawn.chart.addSeries(
        LineSeries,
        {
          color: line.color,
          lineWidth: 1,
          priceLineVisible: false,
          lastValueVisible: line.pane > 0,
          crosshairMarkerVisible: false,
        },
        line.pane,
      );
      indicatorSeries.current.set(key, target);
      // A small pane below the candles, as traders expect an oscillator.
      if (line.pane > 0) drawn.chart.panes()[line.pane]?.setHeight(INDICATOR_PANE_PX);
    }
    redrawIndicators.current();
  }, [drawn, indicators]);

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
