import {
  type IChartApi,
  type IPriceLine,
  type ISeriesApi,
  LineStyle,
  type SeriesType,
} from "lightweight-charts";
import { type RefObject, useEffect, useRef, useState } from "react";
import type { ApiClient } from "../lib/api";
import { type ChartLine, describeMove, lineAt, snapToTick } from "../lib/chartLines";
import { Decimal } from "../lib/decimal";
import { describeError } from "../lib/errors";
import { formatPrice } from "../lib/format";
import { newClientOrderId } from "../lib/ids";
import type { InstrumentView } from "../state/instruments";
import { Dialog } from "./Dialog";
import type { Actions } from "./TradingScreen";

/** How close, in pixels, the pointer must come to a line to grab it. */
const GRAB_TOLERANCE_PX = 6;

const FIELD_LABELS = {
  takeProfit: "Take profit",
  stopLoss: "Stop loss",
  triggerPrice: "Order price",
} as const;

export interface LineMove {
  readonly line: ChartLine;
  readonly to: Decimal;
}

interface ChartLinesProps {
  readonly chart: IChartApi;
  readonly series: ISeriesApi<SeriesType>;
  readonly container: RefObject<HTMLDivElement | null>;
  readonly lines: readonly ChartLine[];
  readonly view: InstrumentView;
  readonly api: ApiClient;
  readonly actions: Actions;
}

/**
 * Draw the position and order lines on the chart, let the pointer drag a take profit, a stop
 * loss or a pending order's price, and ask before sending the change. A cancelled or failed
 * move puts the line back.
 */
export function ChartLines({ chart, series, container, lines, view, api, actions }: ChartLinesProps) {
  const handles = useRef(new Map<string, IPriceLine>());
  const current = useRef(lines);
  current.current = lines;
  const [move, setMove] = useState<LineMove | null>(null);
  // The line being dragged or awaiting confirmation stays where the pointer left it.
  const pinned = useRef<{ key: string; price: number } | null>(null);
  // Row of each line in pixels, published on the list of lines so that a test can grab one;
  // refreshed when the lines change and whenever the pointer crosses the chart.
  const [rows, setRows] = useState<Readonly<Record<string, number>>>({});

  const measure = () => {
    const next: Record<string, number> = {};
    for (const line of current.current) {
      const y = series.priceToCoordinate(Number(line.price));
      if (y !== null) next[line.key] = Math.round(y);
    }
    setRows((previous) =>
      JSON.stringify(previous) === JSON.stringify(next) ? previous : next,
    );
  };

  // Keep the chart's price lines equal to `lines`, moving the ones that stay.
  useEffect(() => {
    const seen = new Set<string>();
    for (const line of lines) {
      seen.add(line.key);
      const held = pinned.current;
      const options = {
        price: held !== null && held.key === line.key ? held.price : Number(line.price),
        color: line.color,
        title: line.title,
        lineWidth: 1,
        lineStyle: line.dashed ? LineStyle.Dashed : LineStyle.Solid,
        axisLabelVisible: true,
      } as const;
      const handle = handles.current.get(line.key);
      if (handle === undefined) {
        handles.current.set(line.key, series.createPriceLine(options));
      } else {
        handle.applyOptions(options);
      }
    }
    for (const [key, handle] of handles.current) {
      if (!seen.has(key)) {
        series.removePriceLine(handle);
        handles.current.delete(key);
      }
    }
    // Keep the lines in view (except a far liquidation price, which would flatten the candles).
    const shown = lines.filter((line) => line.kind !== "liquidation").map((l) => Number(l.price));
    series.applyOptions({
      autoscaleInfoProvider: (original: () => { priceRange: { minValue: number; maxValue: number } | null } | null) => {
        const base = original();
        if (base === null || base.priceRange === null || shown.length === 0) return base;
        return {
          ...base,
          priceRange: {
            minValue: Math.min(base.priceRange.minValue, ...shown),
            maxValue: Math.max(base.priceRange.maxValue, ...shown),
          },
        };
      },
    });
    requestAnimationFrame(measure);
  }, [lines, series]);

  // Dragging: grab near a draggable line, follow the pointer on the tick grid, ask on release.
  useEffect(() => {
    const element = container.current;
        if (element === null) return;
    let dragging: { line: ChartLine; to: Decimal | null } | null = null;
    const rowOf = (event: PointerEvent) => event.clientY - element.getBoundingClientRect().top;
    const toY = (price: number) => series.priceToCoordinate(price);

    const down = (event: PointerEvent) => {
      if (event.button !== 0) return;
      const line = lineAt(current.current, rowOf(event), toY, GRAB_TOLERANCE_PX);
      if (line === null) return;
      dragging = { line, to: null };
      // Hold the chart still while a line moves.
      chart.applyOptions({ handleScroll: false, handleScale: false });
      element.setPointerCapture(event.pointerId);
      event.preventDefault();
      event.stopPropagation();
    };
    const moveTo = (event: PointerEvent) => {
      if (dragging === null) {
        const over = lineAt(current.current, rowOf(event), toY, GRAB_TOLERANCE_PX);
        element.classList.toggle("grab-line", over !== null);
        measure();
        return;
      }
      const price = series.coordinateToPrice(rowOf(event));
      const snapped = price === null ? null : snapToTick(price, view.spec.tickSize);
      if (snapped === null) return;
      dragging.to = snapped;
      pinned.current = { key: dragging.line.key, price: Number(snapped.toPlainString()) };
      handles.current.get(dragging.line.key)?.applyOptions({ price: pinned.current.price });
      event.stopPropagation();
    };
    const up = (event: PointerEvent) => {
      if (dragging === null) return;
      const { line, to } = dragging;
      dragging = null;
      chart.applyOptions({ handleScroll: true, handleScale: true });
      if (element.hasPointerCapture(event.pointerId)) element.releasePointerCapture(event.pointerId);
      event.stopPropagation();
      if (to !== null && !to.eq(Decimal.parse(line.price))) {
        setMove({ line, to });
      } else {
        pinned.current = null;
        handles.current.get(line.key)?.applyOptions({ price: Number(line.price) });
      }
    };
    element.addEventListener("pointerdown", down, true);
    element.addEventListener("pointermove", moveTo, true);
    element.addEventListener("pointerup", up, true);
    element.addEventListener("pointercancel", up, true);
    return () => {
      element.removeEventListener("pointerdown", down, true);
      element.removeEventListener("pointermove", moveTo, true);
      element.removeEventListener("pointerup", up, true);
      element.removeEventListener("pointercancel", up, true);
    };
  }, [chart, series, container, view]);

  const putBack = (line: ChartLine) => {
    pinned.current = null;
    handles.current.get(line.key)?.applyOptions({ price: Number(line.price) });
    setMove(null);
  };

  return (
    <>
      <ul className="visually-hidden" data-testid="chart-lines" aria-label="Lines on the chart">
        {lines.map((line) => (
          <li
            key={line.key}
            data-testid="chart-line"
            data-kind={line.kind}
            data-price={line.price}
            data-draggable={line.drag !== undefined}
            data-y={rows[line.key] ?? ""}
          >
            {line.title} at {formatPrice(line.price, view.priceDigits)}
          </li>
        ))}
      </ul>
      {move !== null && move.line.drag !== undefined && (
        <MoveDialog
          move={move}
          digits={view.priceDigits}
          symbol={view.spec.symbol}
          onCancel={() => putBack(move.line)}
          onConfirm={async () => {
            const drag = move.line.drag;
            if (drag === undefined) return;
            const price = move.to.toPlainString();
            if ("orderId" in drag) {
              await api.modifyOrder(drag.orderId, {
                triggerPrice: price,
                clientOrderId: newClientOrderId(),
              });
            } else {
              await api.modifyPosition(drag.positionId, {
                [drag.field]: price,
                clientOrderId: newClientOrderId(),
              });
            }
            pinned.current = null;
            await actions.refreshAccount();
            setMove(null);
          }}
        />
      )}
    </>
  );
}

interface MoveDialogProps {
  readonly move: LineMove;
  readonly digits: number;
  readonly symbol: string;
  readonly onCancel: () => void;
  readonly onConfirm: () => Promise<void>;
}

function MoveDialog({ move, digits, symbol, onCancel, onConfirm }: MoveDialogProps) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const field = move.line.drag?.field ?? "stopLoss";
  const label = FIELD_LABELS[field];
  return (
    <Dialog title={`Move ${label.toLowerCase()} · ${symbol}`} onClose={onCancel} testId="dialog-move-line">
      <p data-testid="move-line-text" data-new-price={move.to.toPlainString()}>
        {describeMove(label, move.line.price, move.to, digits)}
      </p>
      {error !== null && (
        <p className="form-error" role="alert" data-testid="dialog-error">
          {error}
        </p>
      )}
      <div className="dialog-actions">
        <button type="button" className="ghost" onClick={onCancel} data-testid="move-line-cancel">
          Cancel
        </button>
        <button
          type="button"
          className="primary"
          disabled={busy}
          autoFocus
          data-testid="move-line-confirm"
          onClick={() => {
            setBusy(true);
            setError(null);
            onConfirm().catch((failure: unknown) => {
              setError(describeError(failure));
              setBusy(false);
            });
          }}
        >
          Move {label.toLowerCase()}
        </button>
      </div>
    </Dialog>
  );
}
