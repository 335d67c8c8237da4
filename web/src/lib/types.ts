/**
 * JSON shapes of the public API (protobuf JSON mapping: lowerCamelCase, int64 as strings,
 * enums as names, decimals as strings). Fields absent from a message are omitted by the
 * server, so everything optional in proto3 is optional here.
 */

import type { Side } from "./trading";

export type { Side };

export interface User {
  readonly id: string;
  readonly email: string;
  readonly createTime?: string;
  readonly totpEnabled?: boolean;
  readonly emailVerified?: boolean;
}

export interface AuthResponse {
  readonly user: User;
  readonly accessToken: string;
  readonly refreshToken: string;
  readonly expiresIn: number | string;
}

export interface Quote {
  readonly symbol: string;
  readonly bid: string;
  readonly ask: string;
  readonly time?: string;
  readonly sequence?: string;
}

export interface Instrument {
  readonly symbol: string;
  readonly displayName?: string;
  readonly baseCurrency?: string;
  readonly quoteCurrency?: string;
  readonly tickSize: string;
  readonly lotStep: string;
  readonly minQuantity?: string;
  readonly maxLeverage: number;
  readonly maintenanceMarginRate?: string;
}

export interface Ticker {
  readonly symbol: string;
  readonly open?: string;
  readonly high?: string;
  readonly low?: string;
  readonly last?: string;
  readonly volume?: string;
  readonly change?: string;
  readonly changePercent?: string;
  readonly bid?: string;
  readonly ask?: string;
  readonly time?: string;
}

export type CandleInterval =
  | "CANDLE_INTERVAL_1M"
  | "CANDLE_INTERVAL_5M"
  | "CANDLE_INTERVAL_15M"
  | "CANDLE_INTERVAL_1H"
  | "CANDLE_INTERVAL_4H"
  | "CANDLE_INTERVAL_1D";

export interface Candle {
  readonly openTime: string;
  readonly closeTime?: string;
  readonly open: string;
  readonly high: string;
  readonly low: string;
  readonly close: string;
  readonly volume?: string;
  readonly tickCount?: string;
  readonly closed?: boolean;
}

export type CloseReason =
  | "CLOSE_REASON_USER"
  | "CLOSE_REASON_TAKE_PROFIT"
  | "CLOSE_REASON_STOP_LOSS"
  | "CLOSE_REASON_TRAILING_STOP"
  | "CLOSE_REASON_LIQUIDATION";

export interface Position {
  readonly id: string;
  readonly symbol: string;
  readonly side: Side;
  readonly quantity: string;
  readonly leverage: number;
  readonly entryPrice: string;
  readonly margin: string;
  readonly liquidationPrice?: string;
  readonly takeProfit?: string;
  readonly stopLoss?: string;
  readonly trailingDistance?: string;
  readonly trailingStopPrice?: string;
  readonly unrealizedPnl?: string;
  readonly openTime?: string;
  readonly clientOrderId?: string;
  readonly closePrice?: string;
  readonly closeTime?: string;
  readonly realizedPnl?: string;
  readonly closeReason?: CloseReason;
  readonly status?: "POSITION_STATUS_OPEN" | "POSITION_STATUS_CLOSED";
  readonly houseCoveredLoss?: string;
}

export type OrderType = "ORDER_TYPE_LIMIT" | "ORDER_TYPE_STOP";

export type OrderStatus =
  | "ORDER_STATUS_PENDING"
  | "ORDER_STATUS_FILLED"
  | "ORDER_STATUS_CANCELLED"
  | "ORDER_STATUS_EXPIRED"
  | "ORDER_STATUS_REJECTED";

export interface Order {
  readonly id: string;
  readonly symbol: string;
  readonly side: Side;
  readonly type: OrderType;
  readonly triggerPrice: string;
  readonly leverage: number;
  readonly quantity?: string;
  readonly margin?: string;
  readonly takeProfit?: string;
  readonly stopLoss?: string;
  readonly trailingDistance?: string;
  readonly expireTime?: string;
  readonly status: OrderStatus;
  readonly positionId?: string;
  readonly rejectReason?: string;
  readonly createTime?: string;
  readonly clientOrderId?: string;
  readonly updateTime?: string;
}

export interface Account {
  readonly balance: string;
  readonly usedMargin: string;
  readonly unrealizedPnl: string;
  readonly equity: string;
  readonly freeMargin: string;
  readonly marginLevel?: string;
  readonly currency?: string;
}

export interface ListHistoryResponse {
  readonly positions?: readonly Position[];
  readonly nextPageToken?: string;
}

export interface OpenPositionRequest {
  readonly symbol: string;
  readonly side: Side;
  readonly leverage: number;
  readonly quantity?: string;
  readonly margin?: string;
  readonly expectedPrice?: string;
  readonly maxSlippageBps?: number;
  readonly takeProfit?: string;
  readonly stopLoss?: string;
  readonly trailingDistance?: string;
  readonly clientOrderId?: string;
}

export interface PlaceOrderRequest {
  readonly symbol: string;
  readonly side: Side;
  readonly type: OrderType;
  readonly triggerPrice: string;
  readonly leverage: number;
  readonly quantity?: string;
  readonly margin?: string;
  readonly takeProfit?: string;
  readonly stopLoss?: string;
  readonly trailingDistance?: string;
  readonly expireTime?: string;
  readonly clientOrderId?: string;
}

/** An absent field is left unchanged; an empty string clears it. */
export interface ModifyPositionRequest {
  readonly takeProfit?: string;
  readonly stopLoss?: string;
  readonly trailingDistance?: string;
  readonly clientOrderId?: string;
}

export interface ClosePositionResponse {
  readonly position: Position;
  readonly closedQuantity: string;
  readonly closePrice: string;
  readonly realizedPnl: string;
}

export type EventType =
  | "EVENT_TYPE_POSITION_OPENED"
  | "EVENT_TYPE_POSITION_MODIFIED"
  | "EVENT_TYPE_POSITION_CLOSED"
  | "EVENT_TYPE_POSITION_LIQUIDATED"
  | "EVENT_TYPE_ORDER_PLACED"
  | "EVENT_TYPE_ORDER_FILLED"
  | "EVENT_TYPE_ORDER_CANCELLED"
  | "EVENT_TYPE_ORDER_EXPIRED"
  | "EVENT_TYPE_ORDER_REJECTED"
  | "EVENT_TYPE_BALANCE_CHANGED";

export interface BalanceChange {
  readonly kind?: string;
  readonly amount?: string;
  readonly balance?: string;
  readonly positionId?: string;
}

/** One account event of the `events` channel (`StreamEventsResponse`). */
export interface AccountEvent {
  readonly sequence: string;
  readonly time?: string;
  readonly type: EventType;
  readonly position?: Position;
  readonly order?: Order;
  readonly balanceChange?: BalanceChange;
  /** Position among the events of one sequence number; omitted when 0. */
  readonly index?: number;
}

/** What the `positions` channel delivers on every change (`StreamPositionsResponse`). */
export interface PositionsUpdate {
  readonly positions?: readonly Position[];
  readonly account?: Account;
  readonly sequence?: string;
}

/** What the `candles` channel delivers (`StreamCandlesResponse`). */
export interface CandleUpdate {
  readonly symbol: string;
  readonly interval: CandleInterval;
  readonly candle: Candle;
}
