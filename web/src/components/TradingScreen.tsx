import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import type { ApiClient } from "../lib/api";
import { coalesce } from "../lib/coalesce";
import { describeError } from "../lib/errors";
import { storedEventCursor } from "../lib/events";
import { describeEvent } from "../lib/eventText";
import { type ConnectionState, RealtimeClient, type SocketLike } from "../lib/realtime";
import type { KeyValueStorage } from "../lib/session";
import type {
  Account,
  AccountEvent,
  CandleInterval,
  Order,
  Position,
  PositionsUpdate,
  Quote,
  Ticker,
  User,
} from "../lib/types";
import { type InstrumentView, toInstrumentView } from "../state/instruments";
import { QuoteStore } from "../state/quotes";
import { AccountBar } from "./AccountBar";
import { BottomPanel } from "./BottomPanel";
import { ChartPanel, type IndicatorName } from "./ChartPanel";
import { InstrumentList } from "./InstrumentList";
import { OrderPanel } from "./OrderPanel";
import { SpotScreen } from "./SpotScreen";
import { ToastList, useToasts } from "./Toasts";

interface TradingScreenProps {
  readonly api: ApiClient;
  readonly storage: KeyValueStorage | null;
  readonly user: User;
}

const TICKER_REFRESH_MS = 30_000;
const SELECTION_KEY = "cfd.selection";
const VIEW_KEY = "cfd.view";

type View = "cfd" | "spot";
/** Closes kept from the events channel until the recorded history shows them. */
const MAX_ANNOUNCED_CLOSES = 100;

function websocketUrl(): string {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${window.location.host}/v1/ws`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export interface Actions {
  /** Reload positions, orders and the account after a change made through REST. */
  refreshAccount(): Promise<void>;
  /** Reload the history (after closes). */
  refreshHistory(): void;
}

/** The signed-in trading page: wires REST loads, the WebSocket channels and the panels. */
export function TradingScreen({ api, storage, user }: TradingScreenProps) {
  const quotes = useMemo(() => new QuoteStore(), []);
  const realtime = useMemo(
    () =>
      new RealtimeClient({
        url: websocketUrl(),
        createSocket: (url) => new WebSocket(url) as unknown as SocketLike,
        onError: (error) => {
          if (error.reason === "TOKEN_EXPIRED" || error.reason === "TOKEN_INVALID") {
            void api.refresh();
          }
        },
      }),
    [api],
  );
  const cursor = useMemo(() => storedEventCursor(storage, user.id), [storage, user.id]);
  const { toasts, push, dismiss } = useToasts();

  const [connection, setConnection] = useState<ConnectionState>("connecting");
  const [instruments, setInstruments] = useState<readonly InstrumentView[]>([]);
  const [tickers, setTickers] = useState<Readonly<Record<string, Ticker>>>({});
  const [selected, setSelected] = useState<string | null>(
    () => storage?.getItem(SELECTION_KEY) ?? null,
  );
  const [interval, setCandleInterval] = useState<CandleInterval>("CANDLE_INTERVAL_1M");
  const [indicators, setIndicators] = useState<ReadonlySet<IndicatorName>>(() => new Set());
  const toggleIndicator = useCallback((name: IndicatorName) => {
    setIndicators((current) => {
      const next = new Set(current);
      if (!next.delete(name)) next.add(name);
      return next;
    });
  }, []);
  const [account, setAccount] = useState<Account | null>(null);
  const [positions, setPositions] = useState<readonly Position[]>([]);
  const [orders, setOrders] = useState<readonly Order[]>([]);
  const [historyVersion, setHistoryVersion] = useState(0);
  const [announcedCloses, setAnnouncedCloses] = useState<readonly Position[]>([]);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [eventsReady, setEventsReady] = useState(cursor.hasPosition());
  const [view, setView] = useState<View>(() =>
    storage?.getItem(VIEW_KEY) === "spot" ? "spot" : "cfd",
  );
  const [spotVersion, setSpotVersion] = useState(0);

  // A burst of events (say, many liquidations) costs two reloads, not one per event.
  const refreshAccount = useMemo(
    () =>
      coalesce(async () => {
        const [nextAccount, nextPositions, nextOrders] = await Promise.all([
          api.getAccount(),
          api.listPositions(),
          api.listOrders(),
        ]);
        setAccount(nextAccount);
        setPositions(nextPositions);
        setOrders(nextOrders);
      }),
    [api],
  );

  const refreshHistory = useCallback(() => {
    setHistoryVersion((version) => version + 1);
  }, []);

  const actions: Actions = useMemo(
    () => ({
      refreshAccount: async () => {
        try {
          await refreshAccount();
        } catch {
          // The positions channel brings the same state when the reload fails.
        }
      },
      refreshHistory,
    }),
    [refreshAccount, refreshHistory],
  );

  // The socket, following the session's access token.
  useEffect(() => {
    realtime.setToken(api.sessions.get()?.accessToken ?? null);
    const stopSession = api.sessions.subscribe((session) => {
      realtime.setToken(session?.accessToken ?? null);
    });
    const stopState = realtime.onStateChange((state) => {
      setConnection(state);
      if (state === "online") {
        // Catch up on what changed while offline; the positions channel only sends changes
        // when another connection of this user keeps its feed alive.
        void actions.refreshAccount();
      }
    });
    realtime.start();
    setConnection(realtime.getState());
    return () => {
      stopSession();
      stopState();
      realtime.stop();
    };
  }, [api, realtime, actions]);

  // Initial REST state.
  useEffect(() => {
    let cancelled = false;
    const load = async () => {
      try {
        const [list, prices] = await Promise.all([api.listInstruments(), api.listPrices()]);
        if (cancelled) return;
        const views = list.map(toInstrumentView).filter((v): v is InstrumentView => v !== null);
        for (const quote of prices) {
          quotes.seed(quote);
        }
        setInstruments(views);
        setSelected((current) =>
          current !== null && views.some((v) => v.spec.symbol === current)
            ? current
            : (views[0]?.spec.symbol ?? null),
        );
        setLoadError(null);
      } catch (error) {
        if (!cancelled) setLoadError(describeError(error));
      }
      try {
        await refreshAccount();
      } catch (error) {
        if (!cancelled) setLoadError(describeError(error));
      }
    };
    void load();
    return () => {
      cancelled = true;
    };
  }, [api, quotes, refreshAccount]);

  useEffect(() => {
    if (selected !== null) {
      storage?.setItem(SELECTION_KEY, selected);
    }
  }, [selected, storage]);

  useEffect(() => {
    storage?.setItem(VIEW_KEY, view);
  }, [view, storage]);

  // 24h tickers, refreshed now and then (the live change is computed from each quote).
  useEffect(() => {
    if (instruments.length === 0) return;
    let cancelled = false;
    const load = async () => {
      const results = await Promise.allSettled(
        instruments.map((view) => api.getTicker(view.spec.symbol)),
      );
      if (cancelled) return;
      const next: Record<string, Ticker> = {};
      for (const result of results) {
        if (result.status === "fulfilled" && result.value.symbol !== undefined) {
          next[result.value.symbol] = result.value;
        }
      }
      setTickers((current) => ({ ...current, ...next }));
    };
    void load();
    const timer = setInterval(() => void load(), TICKER_REFRESH_MS);
    return () => {
      cancelled = true;
      clearInterval(timer);
    };
  }, [api, instruments]);

  // Live quotes of every instrument.
  useEffect(() => {
    if (instruments.length === 0) return;
    const symbols = instruments.map((view) => view.spec.symbol);
    return realtime.subscribe({
      channel: "prices",
      private: false,
      params: () => ({ symbols }),
      onData: (data) => {
        if (isRecord(data) && typeof data.symbol === "string") {
          quotes.put(data as unknown as Quote);
        }
      },
    });
  }, [realtime, instruments, quotes]);

  // Own positions and account summary, live; its first message anchors the event cursor.
  useEffect(
    () =>
      realtime.subscribe({
        channel: "positions",
        private: true,
        params: () => ({}),
        onData: (data) => {
          if (!isRecord(data)) return;
          const update = data as PositionsUpdate;
          setPositions(update.positions ?? []);
          if (update.account !== undefined) {
            setAccount(update.account);
          }
          if (!cursor.hasPosition()) {
            // Protobuf JSON omits a zero int64, so an absent sequence means "0".
            cursor.setBaseline(update.sequence ?? "0");
          }
          if (cursor.hasPosition()) {
            setEventsReady(true);
          }
        },
      }),
    [realtime, cursor],
  );

  // Account events: toasts, resumed after reconnects and reloads without loss or repeats.
  const onEvent = useRef<(event: AccountEvent) => void>(() => undefined);
  const previousEvent = useRef<AccountEvent | undefined>(undefined);
  onEvent.current = (event: AccountEvent) => {
    const message = describeEvent(event, previousEvent.current);
    previousEvent.current = event;
    if (message !== null) {
      push({ ...message, kind: event.type });
    }
    const spot =
      event.type.startsWith("EVENT_TYPE_SPOT_") ||
      event.balanceChange?.kind === "BALANCE_CHANGE_KIND_TRANSFER";
    if (spot) {
      setSpotVersion((version) => version + 1);
    } else if (event.type !== "EVENT_TYPE_BALANCE_CHANGED") {
      void actions.refreshAccount();
    }
    if (
      event.type === "EVENT_TYPE_POSITION_CLOSED" ||
      event.type === "EVENT_TYPE_POSITION_LIQUIDATED"
    ) {
      const closed = event.position;
      if (closed !== undefined) {
        setAnnouncedCloses((current) => [closed, ...current].slice(0, MAX_ANNOUNCED_CLOSES));
      }
      refreshHistory();
    }
  };
  useEffect(() => {
    if (!eventsReady) return;
    return realtime.subscribe({
      channel: "events",
      private: true,
      params: () => ({ fromSequence: cursor.fromSequence() }),
      onData: (data) => {
        if (!isRecord(data) || typeof data.sequence !== "string") return;
        const event = data as unknown as AccountEvent;
        if (cursor.accept(event)) {
          onEvent.current(event);
        }
      },
    });
  }, [realtime, cursor, eventsReady]);

  const selectedView = instruments.find((view) => view.spec.symbol === selected) ?? null;

  return (
    <div className="app" data-testid="trading-screen">
      <AccountBar
        api={api}
        user={user}
        account={account}
        connection={connection}
        quotes={quotes}
        selected={selectedView}
      >
        <div className="segmented view-switch" role="group" aria-label="Trading view">
          {(["cfd", "spot"] as const).map((name) => (
            <button
              key={name}
              type="button"
              className={view === name ? "active" : ""}
              aria-pressed={view === name}
              onClick={() => setView(name)}
              data-testid={`view-${name}`}
            >
              {name === "cfd" ? "CFD" : "Spot"}
            </button>
          ))}
        </div>
      </AccountBar>
      {loadError !== null && (
        <div className="banner banner-danger" role="alert">
          {loadError}
        </div>
      )}
      {view === "spot" ? (
        <SpotScreen
          api={api}
          realtime={realtime}
          storage={storage}
          account={account}
          spotVersion={spotVersion}
          refreshAccount={actions.refreshAccount}
        />
      ) : (
        <>
          <div className="workspace">
            <InstrumentList
              instruments={instruments}
              quotes={quotes}
              tickers={tickers}
              selected={selected}
              onSelect={setSelected}
            />
            <ChartPanel
              api={api}
              realtime={realtime}
              quotes={quotes}
              view={selectedView}
              ticker={selected === null ? undefined : tickers[selected]}
              interval={interval}
              onIntervalChange={setCandleInterval}
              indicators={indicators}
              onToggleIndicator={toggleIndicator}
              positions={positions}
              orders={orders}
              actions={actions}
            />
            <OrderPanel
              api={api}
              view={selectedView}
              quotes={quotes}
              account={account}
              actions={actions}
              storage={storage}
            />
          </div>
          <BottomPanel
            api={api}
            instruments={instruments}
            quotes={quotes}
            positions={positions}
            orders={orders}
            historyVersion={historyVersion}
            announcedCloses={announcedCloses}
            actions={actions}
            storage={storage}
          />
        </>
      )}
      <ToastList toasts={toasts} onDismiss={dismiss} />
    </div>
  );
}
