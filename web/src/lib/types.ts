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
  /** Whether the user proved the address is theirs (absent: not yet). */
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
  /** Units of the base currency in one lot; quantity = lots x contract size. */
  readonly contractSize?: string;
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
  /** The quantity in lots (quantity / contract size), exact. */
  readonly volumeLots?: string;
  /** Swap settled by rollovers, signed (negative: charged); a closed entry's share. */
  readonly swap?: string;
  /** Commission paid: the opening one while open; a closed entry's share plus its close's. */
  readonly commission?: string;
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
  /** The quantity in lots; absent when the order is sized by a margin. */
  readonly volumeLots?: string;
}

export interface Account {
  readonly balance: string;
  readonly usedMargin: string;
  readonly unrealizedPnl: string;
  readonly equity: string;
  readonly freeMargin: string;
  readonly marginLevel?: string;
  readonly currency?: string;
  /** MARGIN_MODE_ISOLATED or MARGIN_MODE_CROSS. */
  readonly marginMode?: string;
  /** POSITION_MODE_HEDGING or POSITION_MODE_NETTING. */
  readonly positionMode?: string;
  /** The open positions' swap so far, signed (already in the balance or margins). */
  readonly swap?: string;
  /** The open positions' opening commissions (already paid). */
  readonly commission?: string;
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
  readonly volumeLots?: string;
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
  readonly volumeLots?: string;
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

/** A pending order's changes: an absent field stays, an empty TP/SL/trailing is cleared. */
export type ModifyOrderRequest = Partial<
  Pick<
    Order,
    | "triggerPrice"
    | "quantity"
    | "margin"
    | "takeProfit"
    | "stopLoss"
    | "trailingDistance"
    | "expireTime"
    | "volumeLots"
  >
> & {
  readonly clearExpireTime?: boolean;
  readonly clientOrderId?: string;
};

/** The part of a position to close: in units or in lots, never both. */
export type ClosePart = { readonly quantity: string } | { readonly volumeLots: string };

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
  | "EVENT_TYPE_BALANCE_CHANGED"
  | "EVENT_TYPE_SPOT_ORDER_PLACED"
  | "EVENT_TYPE_SPOT_ORDER_UPDATED"
  | "EVENT_TYPE_SPOT_ORDER_FILLED"
  | "EVENT_TYPE_SPOT_ORDER_CANCELLED"
  | "EVENT_TYPE_SPOT_FILL"
  | "EVENT_TYPE_SWAP_CHARGED";

/** The swap a rollover charged or credited (`SwapCharge`). */
export interface SwapCharge {
  readonly amount?: string;
  readonly multiplier?: number;
  readonly rolloverDate?: string;
}

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
  readonly spotOrder?: SpotOrder;
  readonly spotFill?: SpotFill;
  readonly swapCharge?: SwapCharge;
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

/** A spot market (`ListMarketsResponse`). */
export interface Market {
  readonly name: string;
  readonly baseAsset: string;
  readonly quoteAsset: string;
  readonly tickSize: string;
  readonly lotStep: string;
  readonly takerFeeBps?: number;
  readonly makerFeeBps?: number;
}

/** An aggregated price level; in a change, quantity "0" removes the level. */
export interface BookLevel {
  readonly price: string;
  readonly quantity: string;
}

/** A book snapshot or change of the `book` channel (`StreamOrderBookResponse`). */
export interface BookUpdate {
  readonly market: string;
  readonly sequence?: string;
  readonly snapshot?: boolean;
  readonly bids?: readonly BookLevel[];
  readonly asks?: readonly BookLevel[];
}

export interface MarketTrade {
  readonly id: string;
  readonly price: string;
  readonly quantity: string;
  readonly takerSide?: Side;
  readonly time?: string;
}

/** What the `trades` channel delivers (`StreamMarketTradesResponse`). */
export interface MarketTradesUpdate {
  readonly market: string;
  readonly trades?: readonly MarketTrade[];
}

export interface WalletBalance {
  readonly asset: string;
  readonly available?: string;
  readonly locked?: string;
}

export type SpotOrderType = "SPOT_ORDER_TYPE_LIMIT" | "SPOT_ORDER_TYPE_MARKET";

export type TimeInForce = "TIME_IN_FORCE_GTC" | "TIME_IN_FORCE_IOC" | "TIME_IN_FORCE_FOK";

export type SpotOrderStatus =
  | "SPOT_ORDER_STATUS_OPEN"
  | "SPOT_ORDER_STATUS_PARTIALLY_FILLED"
  | "SPOT_ORDER_STATUS_FILLED"
  | "SPOT_ORDER_STATUS_CANCELLED"
  | "SPOT_ORDER_STATUS_REJECTED"
  | "SPOT_ORDER_STATUS_EXPIRED";

export interface SpotOrder {
  readonly id: string;
  readonly market: string;
  readonly side: Side;
  readonly type: SpotOrderType;
  readonly price?: string;
  readonly quantity?: string;
  readonly quoteQuantity?: string;
  readonly filledQuantity?: string;
  readonly averagePrice?: string;
  readonly fee?: string;
  readonly timeInForce?: TimeInForce;
  readonly postOnly?: boolean;
  readonly status: SpotOrderStatus;
  readonly createTime?: string;
  readonly updateTime?: string;
  readonly clientOrderId?: string;
}

export interface SpotFill {
  readonly id: string;
  readonly orderId: string;
  readonly market: string;
  readonly side: Side;
  readonly price: string;
  readonly quantity: string;
  readonly fee?: string;
  readonly liquidity?: "LIQUIDITY_MAKER" | "LIQUIDITY_TAKER";
  readonly time?: string;
}

export interface PlaceSpotOrderRequest {
  readonly market: string;
  readonly side: Side;
  readonly type: SpotOrderType;
  readonly price?: string;
  readonly quantity?: string;
  readonly quoteQuantity?: string;
  readonly timeInForce?: TimeInForce;
  readonly postOnly?: boolean;
  readonly clientOrderId?: string;
}

export interface PlaceSpotOrderResponse {
  readonly order: SpotOrder;
  readonly fills?: readonly SpotFill[];
}

export type TransferDirection = "TRANSFER_DIRECTION_TO_SPOT" | "TRANSFER_DIRECTION_TO_CFD";

export interface TransferFundsResponse {
  readonly balances?: readonly WalletBalance[];
  readonly cfdBalance?: string;
}

export interface ListSpotFillsResponse {
  readonly fills?: readonly SpotFill[];
  readonly nextPageToken?: string;
}
