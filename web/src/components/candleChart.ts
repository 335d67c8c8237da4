/** What the candlestick charts share: the chart's look, bars for drawing, and live candles. */

import {
  CandlestickSeries,
  ColorType,
  CrosshairMode,
  type IChartApi,
  type ISeriesApi,
  type UTCTimestamp,
  createChart,
} from "lightweight-charts";
import type { ApiClient } from "../lib/api";
import type { RealtimeClient } from "../lib/realtime";
import type { Candle, CandleInterval, CandleUpdate } from "../lib/types";

export const BID_COLOR = "#f6465d";
export const ASK_COLOR = "#0ecb81";

const CANDLE_LIMIT = 500;

export interface Bar {
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
export function toBar(candle: Candle): Bar | null {
  const millis = Date.parse(candle.openTime);
  const values = [candle.open, candle.high, candle.low, candle.close].map(Number);
  if (Number.isNaN(millis) || values.some((value) => !Number.isFinite(value))) {
    return null;
  }
  const [open, high, low, close] = values;
  return { time: Math.floor(millis / 1000) as UTCTimestamp, open, high, low, close };
}

/** Create a dark candlestick chart filling `element`. */
export function createCandleChart(element: HTMLElement): {
  chart: IChartApi;
  series: ISeriesApi<"Candlestick">;
} {
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
  const series = chart.addSeries(CandlestickSeries, {
    upColor: ASK_COLOR,
    downColor: BID_COLOR,
    borderVisible: false,
    wickUpColor: ASK_COLOR,
    wickDownColor: BID_COLOR,
  });
  return { chart, series };
}

export interface CandleHandlers {
  /** The REST history, oldest first, with the last candle's close ("" with none). */
  history(bars: Bar[], lastClose: string): void;
  /** A live candle: a new one (`added`) or the last one updated. */
  update(bar: Bar, close: string, added: boolean): void;
  /** The history could not be loaded. */
  failed(error: unknown): void;
}

/**
 * Load a symbol's candles, then follow the `candles` channel; updates that arrive before the
 * history are held until it is drawn, and updates older than the last candle are dropped.
 * Return the function that stops following.
 */
export function followCandles(
  api: ApiClient,
  realtime: RealtimeClient,
  symbol: string,
  interval: CandleInterval,
  handlers: CandleHandlers,
): () => void {
  let cancelled = false;
  let lastTime: number | null = null;
  let loaded = false;
  const early: Bar[] = [];

  const apply = (bar: Bar, close: string) => {
    if (lastTime !== null && bar.time < lastTime) {
      return;
    }
    const added = lastTime === null || bar.time > lastTime;
    lastTime = bar.time;
    handlers.update(bar, close, added);
  };

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
      const loadedBars: Bar[] = [];
      for (const candle of candles) {
        const bar = toBar(candle);
        const last = loadedBars[loadedBars.length - 1];
        if (bar !== null && (last === undefined || bar.time > last.time)) {
          loadedBars.push(bar);
        }
      }
      lastTime = loadedBars.length === 0 ? null : loadedBars[loadedBars.length - 1].time;
      loaded = true;
      handlers.history(loadedBars, candles.length === 0 ? "" : candles[candles.length - 1].close);
      for (const bar of early) {
        apply(bar, String(bar.close));
      }
      early.length = 0;
    })
    .catch((error: unknown) => {
      if (!cancelled) handlers.failed(error);
    });

  return () => {
    cancelled = true;
    unsubscribe();
  };
}
