import type { IChartApi, ISeriesApi } from "lightweight-charts";
import { useEffect, useRef, useState } from "react";
import type { ApiClient } from "../lib/api";
import { ApiError, describeError } from "../lib/errors";
import type { RealtimeClient } from "../lib/realtime";
import type { MarketSpec } from "../lib/spot";
import type { CandleInterval } from "../lib/types";
import { INTERVALS } from "./ChartPanel";
import { createCandleChart, followCandles } from "./candleChart";

interface SpotChartProps {
  readonly api: ApiClient;
  readonly realtime: RealtimeClient;
  readonly spec: MarketSpec;
}

/** The market's candles (built from its trades), live, with an interval picker. */
export function SpotChart({ api, realtime, spec }: SpotChartProps) {
  const container = useRef<HTMLDivElement>(null);
  const chartRef = useRef<IChartApi | null>(null);
  const seriesRef = useRef<ISeriesApi<"Candlestick"> | null>(null);
  const [interval, setCandleInterval] = useState<CandleInterval>("CANDLE_INTERVAL_1M");
  const [status, setStatus] = useState<{ count: number; error: string | null }>({
    count: 0,
    error: null,
  });

  useEffect(() => {
    const element = container.current;
    if (element === null) return;
    const { chart, series } = createCandleChart(element);
    chartRef.current = chart;
    seriesRef.current = series;
    return () => {
      chart.remove();
      chartRef.current = null;
      seriesRef.current = null;
    };
  }, []);

  useEffect(() => {
    seriesRef.current?.applyOptions({
      priceFormat: {
        type: "price",
        precision: spec.priceDigits,
        minMove: Number(spec.tickSize.toPlainString()),
      },
    });
  }, [spec]);

  useEffect(() => {
    const series = seriesRef.current;
    if (series === null) return;
    let count = 0;
    series.setData([]);
    setStatus({ count: 0, error: null });
    return followCandles(api, realtime, spec.name, interval, {
      history: (bars) => {
        series.setData(bars);
        count = bars.length;
        setStatus({ count, error: null });
        chartRef.current?.timeScale().scrollToRealTime();
      },
      update: (bar, _close, added) => {
        series.update(bar);
        if (added) count += 1;
        setStatus({ count, error: null });
      },
      failed: (error) => {
        // A market without candles yet is an empty chart, not a failure.
        const empty = error instanceof ApiError && error.reason === "UNKNOWN_SYMBOL";
        setStatus({ count: 0, error: empty ? null : describeError(error) });
      },
    });
  }, [api, realtime, spec.name, interval]);

  return (
    <div className="spot-chart">
      <div className="segmented intervals mini" role="group" aria-label="Candle interval">
        {INTERVALS.map((option) => (
          <button
            key={option.value}
            type="button"
            className={option.value === interval ? "active" : ""}
            aria-pressed={option.value === interval}
            onClick={() => setCandleInterval(option.value)}
            data-testid={`spot-interval-${option.label}`}
          >
            {option.label}
          </button>
        ))}
      </div>
      <div className="chart-wrap">
        <div
          ref={container}
          className="chart"
          data-testid="spot-chart"
          data-candle-count={status.count}
          role="img"
          aria-label={`${spec.name} candlestick chart, ${status.count} candles`}
        />
        {status.error !== null && (
          <div className="chart-error" role="alert">
            {status.error}
          </div>
        )}
        {status.error === null && status.count === 0 && (
          <div className="chart-empty overlay">No candles yet</div>
        )}
      </div>
    </div>
  );
}
