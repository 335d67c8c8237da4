import { useCallback, useEffect, useMemo, useState } from "react";
import type { ApiClient } from "../lib/api";
import { OrderBook, followBook } from "../lib/book";
import { coalesce } from "../lib/coalesce";
import { describeError } from "../lib/errors";
import { formatPrice } from "../lib/format";
import type { RealtimeClient } from "../lib/realtime";
import type { KeyValueStorage } from "../lib/session";
import { type MarketSpec, toMarketSpec } from "../lib/spot";
import type {
  Account,
  MarketTrade,
  MarketTradesUpdate,
  SpotFill,
  SpotOrder,
  WalletBalance,
} from "../lib/types";
import { DepthChart } from "./DepthChart";
import { OrderBookLadder } from "./OrderBookLadder";
import { SpotActivity } from "./SpotActivity";
import { SpotChart } from "./SpotChart";
import { SpotOrderForm } from "./SpotOrderForm";
import { TradeTape } from "./TradeTape";
import { TransferDialog } from "./TransferDialog";

const MARKET_KEY = "cfd.spot.market";
const TAPE_SIZE = 50;
const FILLS_PAGE_SIZE = 50;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export interface SpotState {
  readonly wallet: readonly WalletBalance[];
  readonly orders: readonly SpotOrder[];
  readonly fills: readonly SpotFill[];
}

/** Reload the wallet, the open orders and the fills after a change. */
export type RefreshSpot = () => Promise<void>;

/**
 * Follow a market's book on the `book` channel, drawn at most once a frame. After a gap in
 * the sequence it subscribes again, which starts over with a snapshot.
 */
function useOrderBook(realtime: RealtimeClient, market: string | null) {
  const [state, setState] = useState<{ book: OrderBook | null; version: number }>({
    book: null,
    version: 0,
  });
  useEffect(() => {
    if (market === null) return;
    const book = new OrderBook(market);
    let version = 0;
    let frame: number | null = null;
    const publish = () => {
      frame = null;
      version += 1;
      setState({ book, version });
    };
    publish();
    const stop = followBook((subscription) => realtime.subscribe(subscription), book, () => {
      frame ??= requestAnimationFrame(publish);
    });
    return () => {
      stop();
      if (frame !== null) cancelAnimationFrame(frame);
    };
  }, [realtime, market]);
  return state;
}

/** Merge trades into a tape, newest first, each once. */
function mergeTrades(
  newer: readonly MarketTrade[],
  older: readonly MarketTrade[],
): readonly MarketTrade[] {
  const seen = new Set<string>();
  const merged: MarketTrade[] = [];
  for (const trade of [...newer, ...older]) {
    if (seen.has(trade.id)) continue;
    seen.add(trade.id);
    merged.push(trade);
  }
  return merged.slice(0, TAPE_SIZE);
}

/** A market's latest trades: the REST page, then the `trades` channel on top of it. */
function useMarketTrades(api: ApiClient, realtime: RealtimeClient, market: string | null) {
  const [trades, setTrades] = useState<readonly MarketTrade[]>([]);
  useEffect(() => {
    setTrades([]);
    if (market === null) return;
    let cancelled = false;
    const unsubscribe = realtime.subscribe({
      channel: "trades",
      private: false,
      params: () => ({ market }),
      onData: (data) => {
        if (!isRecord(data) || data.market !== market) return;
        // A message holds one command's trades in execution order; the tape is newest first.
        const fresh = [...((data as unknown as MarketTradesUpdate).trades ?? [])].reverse();
        setTrades((current) => mergeTrades(fresh, current));
      },
    });
    api
      .listMarketTrades(market, TAPE_SIZE)
      .then((page) => {
        if (!cancelled) setTrades((current) => mergeTrades(current, page));
      })
      .catch(() => {
        // The channel still brings the trades from now on.
      });
    return () => {
      cancelled = true;
      unsubscribe();
    };
  }, [api, realtime, market]);
  return trades;
}

interface SpotScreenProps {
  readonly api: ApiClient;
  readonly realtime: RealtimeClient;
  readonly storage: KeyValueStorage | null;
  /** The CFD account, whose balance transfers draw on. */
  readonly account: Account | null;
  /** Rises with every spot event of the account: the wallet and orders changed. */
  readonly spotVersion: number;
  readonly refreshAccount: () => Promise<void>;
}

/** The spot exchange: book, depth, tape, candles, order ticket, orders, fills and wallet. */
export function SpotScreen(props: SpotScreenProps) {
  const { api, realtime, storage, account, spotVersion, refreshAccount } = props;
  const [markets, setMarkets] = useState<readonly MarketSpec[]>([]);
  const [selected, setSelected] = useState<string | null>(
    () => storage?.getItem(MARKET_KEY) ?? null,
  );
  const [spot, setSpot] = useState<SpotState>({ wallet: [], orders: [], fills: [] });
  const [marketsError, setMarketsError] = useState<string | null>(null);
  const [spotError, setSpotError] = useState<string | null>(null);
  const [transferring, setTransferring] = useState(false);
  const [pickedPrice, setPickedPrice] = useState<{ price: string } | null>(null);

  useEffect(() => {
    let cancelled = false;
    api
      .listMarkets()
      .then((list) => {
        if (cancelled) return;
        const specs = list.map(toMarketSpec).filter((s): s is MarketSpec => s !== null);
        setMarkets(specs);
        setSelected((current) =>
          current !== null && specs.some((s) => s.name === current)
            ? current
            : (specs[0]?.name ?? null),
        );
      })
      .catch((error: unknown) => {
        if (!cancelled) setMarketsError(describeError(error));
      });
    return () => {
      cancelled = true;
    };
  }, [api]);

  useEffect(() => {
    if (selected !== null) storage?.setItem(MARKET_KEY, selected);
  }, [selected, storage]);

  const reload = useMemo(
    () =>
      coalesce(async () => {
        const [wallet, orders, page] = await Promise.all([
          api.getWallet(),
          api.listSpotOrders(),
          api.listSpotFills(FILLS_PAGE_SIZE),
        ]);
        setSpot({ wallet, orders, fills: page.fills ?? [] });
      }),
    [api],
  );
  const refreshSpot: RefreshSpot = useCallback(async () => {
    try {
      await reload();
      setSpotError(null);
    } catch (error) {
      setSpotError(describeError(error));
    }
  }, [reload]);

  useEffect(() => {
    void refreshSpot();
  }, [refreshSpot, spotVersion]);

  const spec = markets.find((m) => m.name === selected) ?? null;
  const { book, version } = useOrderBook(realtime, spec?.name ?? null);
  const trades = useMarketTrades(api, realtime, spec?.name ?? null);
  const bids = useMemo(() => book?.levels("bids") ?? [], [book, version]);
  const asks = useMemo(() => book?.levels("asks") ?? [], [book, version]);
  const ownOrders = spot.orders.filter((order) => order.market === spec?.name);
  const loadError = marketsError ?? spotError;

  return (
    <>
      {loadError !== null && (
        <div className="banner banner-danger" role="alert" data-testid="spot-error">
          {loadError}
        </div>
      )}
      <div className="spot-workspace" data-testid="spot-screen">
        <section className="panel spot-book" aria-label="Order book">
          {spec !== null && (
            <OrderBookLadder
              spec={spec}
              bids={bids}
              asks={asks}
              ownOrders={ownOrders}
              onPickPrice={(price) => setPickedPrice({ price })}
            />
          )}
        </section>
        <section className="panel spot-center" aria-label="Market">
          <div className="chart-head">
            <div className="segmented markets" role="group" aria-label="Market">
              {markets.map((market) => (
                <button
                  key={market.name}
                  type="button"
                  className={market.name === selected ? "active" : ""}
                  aria-pressed={market.name === selected}
                  onClick={() => setSelected(market.name)}
                  data-testid={`market-${market.name}`}
                >
                  {market.name.replace("_", "/")}
                </button>
              ))}
            </div>
            <span className="muted" data-testid="spot-last-price">
              {trades[0] === undefined || spec === null
                ? ""
                : `Last ${formatPrice(trades[0].price, spec.priceDigits)}`}
            </span>
          </div>
          {spec !== null && <SpotChart api={api} realtime={realtime} spec={spec} />}
          {spec !== null && <DepthChart spec={spec} bids={bids} asks={asks} />}
        </section>
        <section className="panel spot-tape" aria-label="Trades">
          {spec !== null && <TradeTape spec={spec} trades={trades} />}
        </section>
        <SpotOrderForm
          api={api}
          spec={spec}
          bids={bids}
          asks={asks}
          wallet={spot.wallet}
          pickedPrice={pickedPrice}
          refreshSpot={refreshSpot}
          onTransfer={() => setTransferring(true)}
        />
      </div>
      <SpotActivity
        api={api}
        markets={markets}
        spot={spot}
        refreshSpot={refreshSpot}
        onTransfer={() => setTransferring(true)}
      />
      {transferring && (
        <TransferDialog
          api={api}
          account={account}
          wallet={spot.wallet}
          onClose={() => setTransferring(false)}
          onDone={async () => {
            await Promise.all([refreshSpot(), refreshAccount()]);
          }}
        />
      )}
    </>
  );
}
