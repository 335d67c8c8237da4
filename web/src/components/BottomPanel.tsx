import { memo, useEffect, useState } from "react";
import type { ApiClient } from "../lib/api";
import { describeError } from "../lib/errors";
import {
  DASH,
  formatCloseReason,
  formatExactMoney,
  formatExactSignedMoney,
  formatMoney,
  formatOrderType,
  formatPrice,
  formatQuantity,
  formatSide,
  formatSignedMoney,
  formatTime,
  signOf,
} from "../lib/format";
import { closedEntryKey, mergeHistory } from "../lib/history";
import { newClientOrderId } from "../lib/ids";
import type { KeyValueStorage } from "../lib/session";
import type { Order, Position } from "../lib/types";
import type { InstrumentView } from "../state/instruments";
import { type QuoteStore, useQuote } from "../state/quotes";
import { OrderDialog } from "./OrderDialog";
import { type PositionAction, PositionDialog } from "./PositionDialogs";
import { TabbedPanel } from "./TabbedPanel";
import type { Actions } from "./TradingScreen";

type Tab = "positions" | "orders" | "history";

const TABS: readonly Tab[] = ["positions", "orders", "history"];
const HISTORY_PAGE_SIZE = 20;

interface BottomPanelProps {
  readonly api: ApiClient;
  readonly instruments: readonly InstrumentView[];
  readonly quotes: QuoteStore;
  readonly positions: readonly Position[];
  readonly orders: readonly Order[];
  readonly historyVersion: number;
  readonly announcedCloses: readonly Position[];
  readonly actions: Actions;
  /** Where the order ticket remembers its sizing, which the dialogs follow. */
  readonly storage: KeyValueStorage | null;
}

function digitsOf(instruments: readonly InstrumentView[], symbol: string): number {
  return instruments.find((view) => view.spec.symbol === symbol)?.priceDigits ?? 2;
}

function optional(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

/** Positions, pending orders and history, as keyboard-navigable tabs. */
export function BottomPanel(props: BottomPanelProps) {
  const { positions, orders } = props;
  const [tab, setTab] = useState<Tab>("positions");
  const labels: Record<Tab, string> = {
    positions: `Positions (${positions.length})`,
    orders: `Orders (${orders.length})`,
    history: "History",
  };
  return (
    <TabbedPanel label="Account activity" tabs={TABS} labels={labels} tab={tab} onTab={setTab} idPrefix="">
      {tab === "positions" && <PositionsTable {...props} />}
      {tab === "orders" && <OrdersTable {...props} />}
      {tab === "history" && <HistoryTable {...props} />}
    </TabbedPanel>
  );
}

/** The colour class of a signed amount: "up" above zero, "down" below, none at zero. */
function toneOf(value: string | undefined): string {
  const sign = signOf(value);
  return sign > 0 ? "up" : sign < 0 ? "down" : "";
}

interface PositionRowProps {
  readonly position: Position;
  readonly digits: number;
  readonly quotes: QuoteStore;
  readonly onAction: (position: Position, action: PositionAction) => void;
}

const PositionRow = memo(function PositionRow({ position, digits, quotes, onAction }: PositionRowProps) {
  const entry = useQuote(quotes, position.symbol);
  const mark = entry === undefined ? undefined : position.side === "SIDE_BUY" ? entry.quote.bid : entry.quote.ask;
  const trailing = optional(position.trailingDistance);
  return (
    <tr data-testid="position-row" data-position-id={position.id} data-symbol={position.symbol}>
      <td>{position.symbol}</td>
      <td className={position.side === "SIDE_BUY" ? "up" : "down"}>{formatSide(position.side)}</td>
      <td className="num" data-testid="position-quantity">{formatQuantity(position.quantity)}</td>
      <td className="num" data-testid="position-lots">{formatQuantity(position.volumeLots)}</td>
      <td className="num">{formatPrice(position.entryPrice, digits)}</td>
      <td className="num" data-testid="position-mark">{formatPrice(mark, digits)}</td>
      <td className="num">{position.leverage}×</td>
      <td className="num" data-testid="position-margin" title={formatExactMoney(position.margin)}>{formatMoney(position.margin)}</td>
      <td className="num" data-testid="position-liquidation">{formatPrice(optional(position.liquidationPrice), digits)}</td>
      <td className="num">{formatPrice(optional(position.takeProfit), digits)}</td>
      <td className="num">{formatPrice(optional(position.stopLoss), digits)}</td>
      <td className="num">
        {trailing === undefined ? DASH : `${formatPrice(trailing, 0)} (${formatPrice(optional(position.trailingStopPrice), digits)})`}
      </td>
      <td className={`num ${toneOf(position.swap)}`} data-testid="position-swap" title={formatExactSignedMoney(position.swap)}>
        {formatSignedMoney(position.swap)}
      </td>
      <td className="num" data-testid="position-commission" title={formatExactMoney(position.commission)}>
        {formatMoney(position.commission)}
      </td>
      <td className={`num pnl ${signOf(position.unrealizedPnl) > 0 ? "up" : signOf(position.unrealizedPnl) < 0 ? "down" : ""}`} data-testid="position-pnl" title={formatExactSignedMoney(position.unrealizedPnl)}>
        {formatSignedMoney(position.unrealizedPnl)}
      </td>
      <td className="row-actions">
        <button type="button" className="small" onClick={() => onAction(position, "stops")} data-testid="position-edit" aria-label={`Edit take profit and stop loss of ${position.symbol} position`}>
          TP/SL
        </button>
        <button type="button" className="small" onClick={() => onAction(position, "margin")} data-testid="position-add-margin" aria-label={`Add margin to ${position.symbol} position`}>
          Margin
        </button>
        <button type="button" className="small danger" onClick={() => onAction(position, "close")} data-testid="position-close" aria-label={`Close ${position.symbol} position`}>
          Close
        </button>
      </td>
    </tr>
  );
});

function PositionsTable({ api, instruments, quotes, positions, actions, storage }: BottomPanelProps) {
  const [dialog, setDialog] = useState<{ id: string; action: PositionAction } | null>(null);
  const open = dialog === null ? undefined : positions.find((p) => p.id === dialog.id);
  useEffect(() => {
    // The position may close while its dialog is open (TP, liquidation): drop the dialog.
    if (dialog !== null && open === undefined) setDialog(null);
  }, [dialog, open]);
  if (positions.length === 0) {
    return <p className="empty" data-testid="positions-empty">No open positions</p>;
  }
  return (
    <div className="table-wrap">
      <table className="grid" data-testid="positions-table">
        <thead>
          <tr>
            <th>Symbol</th>
            <th>Side</th>
            <th className="num">Qty</th>
            <th className="num">Lots</th>
            <th className="num">Entry</th>
            <th className="num">Mark</th>
            <th className="num">Lev.</th>
            <th className="num">Margin</th>
            <th className="num">Liq. price</th>
            <th className="num">TP</th>
            <th className="num">SL</th>
            <th className="num">Trailing</th>
            <th className="num">Swap</th>
            <th className="num">Comm.</th>
            <th className="num">PnL</th>
            <th><span className="visually-hidden">Actions</span></th>
          </tr>
        </thead>
        <tbody>
          {positions.map((position) => (
            <PositionRow
              key={position.id}
              position={position}
              digits={digitsOf(instruments, position.symbol)}
              quotes={quotes}
              onAction={(p, action) => setDialog({ id: p.id, action })}
            />
          ))}
        </tbody>
      </table>
      {dialog !== null && open !== undefined && (
        <PositionDialog
          api={api}
          position={open}
          view={instruments.find((v) => v.spec.symbol === open.symbol)}
          action={dialog.action}
          actions={actions}
          storage={storage}
          onClose={() => setDialog(null)}
        />
      )}
    </div>
  );
}

function OrdersTable({ api, instruments, orders, actions, storage }: BottomPanelProps) {
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  // The order may fill, expire or be cancelled while its dialog is open: the dialog goes too.
  const edited = editing === null ? undefined : orders.find((o) => o.id === editing);
  if (orders.length === 0) {
    return <p className="empty" data-testid="orders-empty">No pending orders</p>;
  }
  const cancel = async (order: Order) => {
    setBusy(order.id);
    setError(null);
    try {
      await api.cancelOrder(order.id, newClientOrderId());
      await actions.refreshAccount();
    } catch (failure) {
      setError(describeError(failure));
    } finally {
      setBusy(null);
    }
  };
  return (
    <div className="table-wrap">
      {error !== null && <p className="form-error" role="alert">{error}</p>}
      <table className="grid" data-testid="orders-table">
        <thead>
          <tr>
            <th>Symbol</th>
            <th>Side</th>
            <th>Type</th>
            <th className="num">Trigger</th>
            <th className="num">Size</th>
            <th className="num">Lots</th>
            <th className="num">Lev.</th>
            <th className="num">TP</th>
            <th className="num">SL</th>
            <th>Placed</th>
            <th>Expires</th>
            <th><span className="visually-hidden">Actions</span></th>
          </tr>
        </thead>
        <tbody>
          {orders.map((order) => {
            const digits = digitsOf(instruments, order.symbol);
            return (
              <tr key={order.id} data-testid="order-row" data-order-id={order.id}>
                <td>{order.symbol}</td>
                <td className={order.side === "SIDE_BUY" ? "up" : "down"}>{formatSide(order.side)}</td>
                <td>{formatOrderType(order.type)}</td>
                <td className="num">{formatPrice(order.triggerPrice, digits)}</td>
                <td className="num" title={order.quantity !== undefined && order.quantity !== "" ? undefined : `${formatExactMoney(order.margin)} USD`}>
                  {order.quantity !== undefined && order.quantity !== ""
                    ? formatQuantity(order.quantity)
                    : `${formatMoney(order.margin)} USD`}
                </td>
                <td className="num" data-testid="order-lots">{formatQuantity(order.volumeLots)}</td>
                <td className="num">{order.leverage}×</td>
                <td className="num">{formatPrice(optional(order.takeProfit), digits)}</td>
                <td className="num">{formatPrice(optional(order.stopLoss), digits)}</td>
                <td>{formatTime(order.createTime)}</td>
                <td data-testid="order-expires">
                  {order.expireTime === undefined ? "Good till cancelled" : formatTime(order.expireTime)}
                </td>
                <td className="row-actions">
                  <button
                    type="button"
                    className="small"
                    disabled={busy === order.id}
                    onClick={() => setEditing(order.id)}
                    data-testid="order-edit"
                    aria-label={`Edit ${order.symbol} ${formatOrderType(order.type).toLowerCase()} order`}
                  >
                    Edit
                  </button>
                  <button
                    type="button"
                    className="small danger"
                    disabled={busy === order.id}
                    onClick={() => void cancel(order)}
                    data-testid="order-cancel"
                    aria-label={`Cancel ${order.symbol} ${formatOrderType(order.type).toLowerCase()} order`}
                  >
                    Cancel
                  </button>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {edited !== undefined && (
        <OrderDialog
          api={api}
          order={edited}
          view={instruments.find((v) => v.spec.symbol === edited.symbol)}
          actions={actions}
          storage={storage}
          onClose={() => setEditing(null)}
        />
      )}
    </div>
  );
}

function HistoryTable({ api, instruments, historyVersion, announcedCloses }: BottomPanelProps) {
  // Tokens of the pages before the current one; the last entry is the current page's token.
  const [tokens, setTokens] = useState<readonly string[]>([""]);
  const [serverRows, setRows] = useState<readonly Position[]>([]);
  const [next, setNext] = useState<string>("");
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const token = tokens[tokens.length - 1];
  const rows = token === "" ? mergeHistory(serverRows, announcedCloses) : serverRows;

  useEffect(() => {
    let cancelled = false;
    setLoading(true);
    api
      .listHistory(HISTORY_PAGE_SIZE, token === "" ? undefined : token)
      .then((page) => {
        if (cancelled) return;
        setRows(page.positions ?? []);
        setNext(page.nextPageToken ?? "");
        setError(null);
      })
      .catch((failure: unknown) => {
        if (!cancelled) setError(describeError(failure));
      })
      .finally(() => {
        if (!cancelled) setLoading(false);
      });
    return () => {
      cancelled = true;
    };
  }, [api, token, historyVersion]);

  return (
    <div className="table-wrap">
      {error !== null && <p className="form-error" role="alert">{error}</p>}
      {rows.length === 0 && !loading ? (
        <p className="empty" data-testid="history-empty">No closed positions yet</p>
      ) : (
        <table className="grid" data-testid="history-table" aria-busy={loading}>
          <thead>
            <tr>
              <th>Closed</th>
              <th>Symbol</th>
              <th>Side</th>
              <th className="num">Qty</th>
              <th className="num">Lots</th>
              <th className="num">Entry</th>
              <th className="num">Close</th>
              <th className="num">Realized PnL</th>
              <th className="num">Swap</th>
              <th className="num">Comm.</th>
              <th>Reason</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((position, index) => {
              const digits = digitsOf(instruments, position.symbol);
              return (
                <tr key={`${closedEntryKey(position)}-${index}`} data-testid="history-row" data-reason={position.closeReason ?? ""}>
                  <td>{formatTime(position.closeTime)}</td>
                  <td>{position.symbol}</td>
                  <td className={position.side === "SIDE_BUY" ? "up" : "down"}>{formatSide(position.side)}</td>
                  <td className="num">{formatQuantity(position.quantity)}</td>
                  <td className="num" data-testid="history-lots">{formatQuantity(position.volumeLots)}</td>
                  <td className="num">{formatPrice(position.entryPrice, digits)}</td>
                  <td className="num">{formatPrice(position.closePrice, digits)}</td>
                  <td className={`num ${signOf(position.realizedPnl) > 0 ? "up" : signOf(position.realizedPnl) < 0 ? "down" : ""}`} data-testid="history-pnl" title={formatExactSignedMoney(position.realizedPnl)}>
                    {formatSignedMoney(position.realizedPnl)}
                  </td>
                  <td className={`num ${toneOf(position.swap)}`} data-testid="history-swap" title={formatExactSignedMoney(position.swap)}>
                    {formatSignedMoney(position.swap)}
                  </td>
                  <td className="num" data-testid="history-commission" title={formatExactMoney(position.commission)}>
                    {formatMoney(position.commission)}
                  </td>
                  <td data-testid="history-reason">{formatCloseReason(position.closeReason)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <div className="pager">
        <button type="button" className="small" disabled={tokens.length <= 1} onClick={() => setTokens((t) => t.slice(0, -1))} data-testid="history-prev">
          Newer
        </button>
        <span className="muted">Page {tokens.length}</span>
        <button type="button" className="small" disabled={next === ""} onClick={() => setTokens((t) => [...t, next])} data-testid="history-next">
          Older
        </button>
      </div>
    </div>
  );
}
