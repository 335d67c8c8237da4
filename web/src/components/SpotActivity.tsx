import { useState } from "react";
import type { ApiClient } from "../lib/api";
import { describeError } from "../lib/errors";
import {
  DASH,
  formatExactMoney,
  formatPrice,
  formatQuantity,
  formatSide,
  formatTime,
} from "../lib/format";
import { newClientOrderId } from "../lib/ids";
import type { MarketSpec } from "../lib/spot";
import type { SpotOrder } from "../lib/types";
import type { RefreshSpot, SpotState } from "./SpotScreen";
import { TabbedPanel } from "./TabbedPanel";

type Tab = "orders" | "fills" | "wallet";

const TABS: readonly Tab[] = ["orders", "fills", "wallet"];

interface SpotActivityProps {
  readonly api: ApiClient;
  readonly markets: readonly MarketSpec[];
  readonly spot: SpotState;
  readonly refreshSpot: RefreshSpot;
  readonly onTransfer: () => void;
}

function digitsOf(markets: readonly MarketSpec[], market: string): number {
  return markets.find((spec) => spec.name === market)?.priceDigits ?? 2;
}

const STATUS_TEXT: Readonly<Record<string, string>> = {
  SPOT_ORDER_STATUS_OPEN: "Open",
  SPOT_ORDER_STATUS_PARTIALLY_FILLED: "Partly filled",
};

/** Open spot orders, fills and wallet balances, as keyboard-navigable tabs. */
export function SpotActivity({ api, markets, spot, refreshSpot, onTransfer }: SpotActivityProps) {
  const [tab, setTab] = useState<Tab>("orders");
  const labels: Record<Tab, string> = {
    orders: `Open orders (${spot.orders.length})`,
    fills: "Fills",
    wallet: "Wallet",
  };
  return (
    <TabbedPanel label="Spot activity" tabs={TABS} labels={labels} tab={tab} onTab={setTab} idPrefix="spot-">
      {tab === "orders" && (
        <OpenOrders api={api} markets={markets} orders={spot.orders} refreshSpot={refreshSpot} />
      )}
      {tab === "fills" && <Fills markets={markets} spot={spot} />}
      {tab === "wallet" && <Wallet spot={spot} onTransfer={onTransfer} />}
    </TabbedPanel>
  );
}

interface OpenOrdersProps {
  readonly api: ApiClient;
  readonly markets: readonly MarketSpec[];
  readonly orders: readonly SpotOrder[];
  readonly refreshSpot: RefreshSpot;
}

function OpenOrders({ api, markets, orders, refreshSpot }: OpenOrdersProps) {
  const [cancelling, setCancelling] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  if (orders.length === 0) {
    return <p className="empty">No open orders</p>;
  }
  const cancel = async (order: SpotOrder) => {
    setCancelling(order.id);
    setError(null);
    try {
      await api.cancelSpotOrder(order.id, newClientOrderId());
    } catch (failure) {
      setError(describeError(failure));
    } finally {
      setCancelling(null);
      await refreshSpot();
    }
  };
  return (
    <div className="table-wrap">
      {error !== null && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      <table className="grid">
        <thead>
          <tr>
            <th>Market</th>
            <th>Side</th>
            <th className="num">Price</th>
            <th className="num">Quantity</th>
            <th className="num">Filled</th>
            <th>Status</th>
            <th>Time in force</th>
            <th>Placed</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {orders.map((order) => (
            <tr key={order.id} data-testid="spot-order-row" data-order-id={order.id}>
              <td>{order.market}</td>
              <td className={order.side === "SIDE_BUY" ? "up" : "down"}>{formatSide(order.side)}</td>
              <td className="num" data-testid="spot-order-price">
                {formatPrice(order.price, digitsOf(markets, order.market))}
              </td>
              <td className="num" data-testid="spot-order-quantity">
                {formatQuantity(order.quantity)}
              </td>
              <td className="num">{formatQuantity(order.filledQuantity ?? "0")}</td>
              <td>{STATUS_TEXT[order.status] ?? order.status}</td>
              <td>
                {(order.timeInForce ?? "TIME_IN_FORCE_GTC").replace("TIME_IN_FORCE_", "")}
                {order.postOnly === true ? ", post only" : ""}
              </td>
              <td>{formatTime(order.createTime)}</td>
              <td className="row-actions">
                <button
                  type="button"
                  className="small danger"
                  disabled={cancelling === order.id}
                  onClick={() => void cancel(order)}
                  data-testid="spot-order-cancel"
                  aria-label={`Cancel ${formatSide(order.side).toLowerCase()} ${order.market} order`}
                >
                  Cancel
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Fills({ markets, spot }: { markets: readonly MarketSpec[]; spot: SpotState }) {
  if (spot.fills.length === 0) {
    return <p className="empty">No fills yet</p>;
  }
  return (
    <div className="table-wrap">
      <table className="grid">
        <thead>
          <tr>
            <th>Time</th>
            <th>Market</th>
            <th>Side</th>
            <th className="num">Price</th>
            <th className="num">Quantity</th>
            <th className="num">Fee (USD)</th>
            <th>Role</th>
            <th>Order</th>
          </tr>
        </thead>
        <tbody>
          {spot.fills.map((fill) => (
            <tr key={fill.id} data-testid="spot-fill-row" data-fill-id={fill.id}>
              <td>{formatTime(fill.time)}</td>
              <td>{fill.market}</td>
              <td className={fill.side === "SIDE_BUY" ? "up" : "down"}>{formatSide(fill.side)}</td>
              <td className="num" data-testid="spot-fill-price">
                {formatPrice(fill.price, digitsOf(markets, fill.market))}
              </td>
              <td className="num" data-testid="spot-fill-quantity">
                {formatQuantity(fill.quantity)}
              </td>
              <td className="num" data-testid="spot-fill-fee">
                {formatExactMoney(fill.fee ?? "0")}
              </td>
              <td data-testid="spot-fill-liquidity">
                {fill.liquidity === "LIQUIDITY_MAKER" ? "Maker" : fill.liquidity === "LIQUIDITY_TAKER" ? "Taker" : DASH}
              </td>
              <td className="muted">{fill.orderId}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Wallet({ spot, onTransfer }: { spot: SpotState; onTransfer: () => void }) {
  return (
    <div className="table-wrap">
      <table className="grid">
        <thead>
          <tr>
            <th>Asset</th>
            <th className="num">Available</th>
            <th className="num">Locked</th>
            <th className="row-actions">
              <button type="button" className="small" onClick={onTransfer} data-testid="wallet-transfer">
                Transfer USD
              </button>
            </th>
          </tr>
        </thead>
        <tbody>
          {spot.wallet.map((balance) => {
            const format = balance.asset === "USD" ? formatExactMoney : formatQuantity;
            return (
              <tr key={balance.asset} data-testid="wallet-row" data-asset={balance.asset}>
                <td>{balance.asset}</td>
                <td className="num" data-testid="wallet-available">
                  {format(balance.available ?? "0")}
                </td>
                <td className="num" data-testid="wallet-locked">
                  {format(balance.locked ?? "0")}
                </td>
                <td />
              </tr>
            );
          })}
        </tbody>
      </table>
      {spot.wallet.length === 0 && <p className="empty">The wallet is empty: transfer USD to start</p>}
    </div>
  );
}
