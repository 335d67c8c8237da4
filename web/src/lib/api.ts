/** The REST client of the public API (API.md "REST surface"). */

import { ApiError, parseApiError } from "./errors";
import type { SecondFactor } from "./security";
import { type Session, SessionStore, refreshDelay, sessionFromAuth } from "./session";
import type {
  Account,
  AuthResponse,
  Candle,
  CandleInterval,
  ClosePart,
  ClosePositionResponse,
  Instrument,
  ListHistoryResponse,
  ListSpotFillsResponse,
  Market,
  MarketTrade,
  ModifyOrderRequest,
  ModifyPositionRequest,
  OpenPositionRequest,
  Order,
  PlaceOrderRequest,
  PlaceSpotOrderRequest,
  PlaceSpotOrderResponse,
  Position,
  Quote,
  SpotOrder,
  Ticker,
  TransferDirection,
  TransferFundsResponse,
  User,
  WalletBalance,
} from "./types";

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

type Query = Readonly<Record<string, string | number | undefined>>;

interface RequestOptions {
  readonly body?: unknown;
  readonly query?: Query;
  readonly auth?: boolean;
}

function idempotency(clientOrderId: string | undefined): { clientOrderId?: string } {
  return clientOrderId === undefined ? {} : { clientOrderId };
}

function buildQuery(query: Query | undefined): string {
  if (query === undefined) {
    return "";
  }
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== "") {
      params.set(key, String(value));
    }
  }
  const text = params.toString();
  return text === "" ? "" : `?${text}`;
}

/**
 * Calls the API with the session's access token, refreshing it once and retrying when the
 * server says it expired, and keeping a timer that refreshes it before it expires.
 */
export class ApiClient {
  private readonly baseUrl: string;
  private readonly fetcher: FetchLike;
  readonly sessions: SessionStore;
  private refreshing: Promise<Session | null> | null = null;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(baseUrl: string, fetcher: FetchLike, sessions: SessionStore) {
    this.baseUrl = baseUrl;
    this.fetcher = fetcher;
    this.sessions = sessions;
    this.scheduleRefresh();
  }

  private async send(method: string, path: string, options: RequestOptions): Promise<unknown> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
    }
    const session = this.sessions.get();
    if (options.auth !== false && session !== null) {
      headers.Authorization = `Bearer ${session.accessToken}`;
    }
    let response: Response;
    try {
      response = await this.fetcher(`${this.baseUrl}${path}${buildQuery(options.query)}`, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
      });
    } catch {
      throw new ApiError(0, 14, "The server cannot be reached", null, []);
    }
    const text = await response.text();
    let parsed: unknown = null;
    if (text !== "") {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = null;
      }
    }
    if (!response.ok) {
      throw parseApiError(response.status, parsed);
    }
    return parsed ?? {};
  }

  /** Send a request; on an expired token refresh once and retry. */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    try {
      return (await this.send(method, path, options)) as T;
    } catch (error) {
      const retriable =
        error instanceof ApiError &&
        error.httpStatus === 401 &&
        options.auth !== false &&
        this.sessions.get() !== null;
      if (!retriable) {
        throw error;
      }
      const renewed = await this.refresh();
      if (renewed === null) {
        throw error;
      }
      return (await this.send(method, path, options)) as T;
    }
  }

  /** Rotate the refresh token; on failure the session ends. Concurrent calls share one. */
  refresh(): Promise<Session | null> {
    if (this.refreshing !== null) {
      return this.refreshing;
    }
    const current = this.sessions.get();
    if (current === null) {
      return Promise.resolve(null);
    }
    const run = async (): Promise<Session | null> => {
      try {
        const response = await this.send("POST", "/v1/auth/refresh", {
          body: { refreshToken: current.refreshToken },
          auth: false,
        });
        const session = sessionFromAuth(response as AuthResponse, Date.now());
        this.adopt(session);
        return session;
      } catch (error) {
        // A network failure keeps the session for a later try; a refusal ends it.
        if (error instanceof ApiError && error.httpStatus !== 0 && error.httpStatus < 500) {
          this.adopt(null);
          return null;
        }
        this.scheduleRetry();
        return null;
      } finally {
        this.refreshing = null;
      }
    };
    this.refreshing = run();
    return this.refreshing;
  }

  private adopt(session: Session | null): void {
    this.sessions.set(session);
    this.scheduleRefresh();
  }

  private clearTimer(): void {
    if (this.refreshTimer !== null) {
      clearTimeout(this.refreshTimer);
      this.refreshTimer = null;
    }
  }

  private scheduleRetry(): void {
    this.clearTimer();
    this.refreshTimer = setTimeout(() => {
      void this.refresh();
    }, 5_000);
  }

  /** Arrange the next refresh shortly before the access token expires. */
  scheduleRefresh(): void {
    this.clearTimer();
    const session = this.sessions.get();
    if (session === null) {
      return;
    }
    this.refreshTimer = setTimeout(() => {
      void this.refresh();
    }, refreshDelay(session, Date.now()));
  }

  dispose(): void {
    this.clearTimer();
  }

  async signup(email: string, password: string): Promise<Session> {
    const response = await this.request<AuthResponse>("POST", "/v1/auth/signup", {
      body: { email, password },
      auth: false,
    });
    const session = sessionFromAuth(response, Date.now());
    this.adopt(session);
    return session;
  }

  /** Sign in; `second` carries the TOTP or recovery code of a user with two-factor auth. */
  async signin(email: string, password: string, second: SecondFactor = {}): Promise<Session> {
    const response = await this.request<AuthResponse>("POST", "/v1/auth/signin", {
      body: { email, password, ...second },
      auth: false,
    });
    const session = sessionFromAuth(response, Date.now());
    this.adopt(session);
    return session;
  }

  /** Finish a sign-in through an identity provider; return where the page goes next. */
  async completeProviderSignin(code: string, state: string): Promise<string> {
    const response = await this.request<AuthResponse & { returnUrl?: string }>(
      "POST",
      "/v1/auth/providers:complete",
      { body: { code, state }, auth: false },
    );
    this.adopt(sessionFromAuth(response, Date.now()));
    return response.returnUrl ?? "/";
  }

  /**
   * Finish a provider sign-in that asked for the second factor (TOTP_REQUIRED with a
   * `signinTicket`); return where the page goes next.
   */
  async verifyProviderSignin(signinTicket: string, second: SecondFactor): Promise<string> {
    const response = await this.request<AuthResponse & { returnUrl?: string }>(
      "POST",
      "/v1/auth/providers:verify",
      { body: { signinTicket, ...second }, auth: false },
    );
    this.adopt(sessionFromAuth(response, Date.now()));
    return response.returnUrl ?? "/";
  }

  /** Revoke the refresh token (best effort) and forget the session. */
  async signout(): Promise<void> {
    const session = this.sessions.get();
    this.adopt(null);
    if (session === null) {
      return;
    }
    try {
      await this.send("POST", "/v1/auth/signout", {
        body: { refreshToken: session.refreshToken },
        auth: false,
      });
    } catch {
      // The local session is gone either way; the token expires on its own.
    }
  }

  async getUser(): Promise<User> {
    const response = await this.request<{ user?: User } & Partial<User>>("GET", "/v1/users/me");
    return response.user ?? (response as User);
  }

  async getAccount(): Promise<Account> {
    const response = await this.request<{ account?: Account } & Partial<Account>>(
      "GET",
      "/v1/account",
    );
    return response.account ?? (response as Account);
  }

  async listPrices(): Promise<readonly Quote[]> {
    const response = await this.request<{ prices?: Quote[] }>("GET", "/v1/prices");
    return response.prices ?? [];
  }

  async listInstruments(): Promise<readonly Instrument[]> {
    const response = await this.request<{ instruments?: Instrument[] }>("GET", "/v1/instruments");
    return response.instruments ?? [];
  }

  async getTicker(symbol: string): Promise<Ticker> {
    const response = await this.request<{ ticker?: Ticker } & Partial<Ticker>>(
      "GET",
      `/v1/instruments/${encodeURIComponent(symbol)}/ticker`,
    );
    return response.ticker ?? (response as Ticker);
  }

  async getCandles(
    symbol: string,
    interval: CandleInterval,
    limit: number,
  ): Promise<readonly Candle[]> {
    const response = await this.request<{ candles?: Candle[] }>(
      "GET",
      `/v1/instruments/${encodeURIComponent(symbol)}/candles`,
      { query: { interval, limit } },
    );
    return response.candles ?? [];
  }

  async listPositions(): Promise<readonly Position[]> {
    const response = await this.request<{ positions?: Position[] }>("GET", "/v1/positions");
    return response.positions ?? [];
  }

  async openPosition(request: OpenPositionRequest): Promise<Position> {
    const response = await this.request<{ position: Position }>("POST", "/v1/positions", {
      body: request,
    });
    return response.position;
  }

  async modifyPosition(positionId: string, request: ModifyPositionRequest): Promise<Position> {
    const response = await this.request<{ position: Position }>(
      "PATCH",
      `/v1/positions/${encodeURIComponent(positionId)}`,
      { body: request },
    );
    return response.position;
  }

  /** Close all of a position, or `quantity` of it. */
  /** Close a position in full, or the part given in units (`quantity`) or lots (`volumeLots`). */
  async closePosition(
    positionId: string,
    part?: ClosePart,
    clientOrderId?: string,
  ): Promise<ClosePositionResponse> {
    return this.request<ClosePositionResponse>(
      "POST",
      `/v1/positions/${encodeURIComponent(positionId)}:close`,
      { body: { ...part, ...idempotency(clientOrderId) } },
    );
  }

  async addMargin(positionId: string, amount: string, clientOrderId?: string): Promise<Position> {
    const response = await this.request<{ position: Position }>(
      "POST",
      `/v1/positions/${encodeURIComponent(positionId)}:addMargin`,
      { body: { amount, ...idempotency(clientOrderId) } },
    );
    return response.position;
  }

  async placeOrder(request: PlaceOrderRequest): Promise<Order> {
    const response = await this.request<{ order: Order }>("POST", "/v1/orders", {
      body: request,
    });
    return response.order;
  }

  async listOrders(): Promise<readonly Order[]> {
    const response = await this.request<{ orders?: Order[] }>("GET", "/v1/orders");
    return response.orders ?? [];
  }

  async modifyOrder(orderId: string, request: ModifyOrderRequest): Promise<Order> {
    const response = await this.request<{ order: Order }>(
      "PATCH",
      `/v1/orders/${encodeURIComponent(orderId)}`,
      { body: request },
    );
    return response.order;
  }

  async cancelOrder(orderId: string, clientOrderId?: string): Promise<Order> {
    const response = await this.request<{ order: Order }>(
      "POST",
      `/v1/orders/${encodeURIComponent(orderId)}:cancel`,
      { body: idempotency(clientOrderId) },
    );
    return response.order;
  }

  async listHistory(pageSize: number, pageToken: string | undefined): Promise<ListHistoryResponse> {
    return this.request<ListHistoryResponse>("GET", "/v1/history", {
      query: { pageSize, pageToken },
    });
  }

  async listMarkets(): Promise<readonly Market[]> {
    const response = await this.request<{ markets?: Market[] }>("GET", "/v1/markets");
    return response.markets ?? [];
  }

  async listMarketTrades(market: string, pageSize: number): Promise<readonly MarketTrade[]> {
    const response = await this.request<{ trades?: MarketTrade[] }>(
      "GET",
      `/v1/markets/${encodeURIComponent(market)}/trades`,
      { query: { pageSize } },
    );
    return response.trades ?? [];
  }

  async getWallet(): Promise<readonly WalletBalance[]> {
    const response = await this.request<{ balances?: WalletBalance[] }>("GET", "/v1/wallet");
    return response.balances ?? [];
  }

  async transferFunds(
    amount: string,
    direction: TransferDirection,
    clientOrderId?: string,
  ): Promise<TransferFundsResponse> {
    return this.request<TransferFundsResponse>("POST", "/v1/wallet:transfer", {
      body: { amount, direction, ...idempotency(clientOrderId) },
    });
  }

  async placeSpotOrder(request: PlaceSpotOrderRequest): Promise<PlaceSpotOrderResponse> {
    return this.request<PlaceSpotOrderResponse>("POST", "/v1/spot/orders", { body: request });
  }

  async cancelSpotOrder(orderId: string, clientOrderId?: string): Promise<SpotOrder> {
    const response = await this.request<{ order: SpotOrder }>(
      "POST",
      `/v1/spot/orders/${encodeURIComponent(orderId)}:cancel`,
      { body: idempotency(clientOrderId) },
    );
    return response.order;
  }

  async listSpotOrders(market?: string): Promise<readonly SpotOrder[]> {
    const response = await this.request<{ orders?: SpotOrder[] }>("GET", "/v1/spot/orders", {
      query: { market },
    });
    return response.orders ?? [];
  }

  async listSpotFills(pageSize: number, pageToken?: string): Promise<ListSpotFillsResponse> {
    return this.request<ListSpotFillsResponse>("GET", "/v1/spot/fills", {
      query: { pageSize, pageToken },
    });
  }
}
