import { type FormEvent, useEffect, useId, useState } from "react";
import type { ApiClient } from "../lib/api";
import { Decimal } from "../lib/decimal";
import { ApiError, type ServerFields, describeError, fieldErrorsOf } from "../lib/errors";
import { DASH, formatExactMoney, formatMoney, formatPrice, formatQuantity } from "../lib/format";
import { newClientOrderId } from "../lib/ids";
import { loadOneClick, loadSizeMode, saveOneClick, saveSizeMode } from "../lib/preferences";
import type { KeyValueStorage } from "../lib/session";
import { type Side, type SizeMode, fillPrice, lotsStep, previewOrder } from "../lib/trading";
import type { Account, OrderType } from "../lib/types";
import type { InstrumentView } from "../state/instruments";
import { type QuoteStore, useQuote } from "../state/quotes";
import { FormFeedback, fieldErrorParts } from "./forms";
import { Segmented } from "./Segmented";
import type { Actions } from "./TradingScreen";

type Execution = "market" | "limit" | "stop";

interface OrderPanelProps {
  readonly api: ApiClient;
  readonly view: InstrumentView | null;
  readonly quotes: QuoteStore;
  readonly account: Account | null;
  readonly actions: Actions;
  readonly storage: KeyValueStorage | null;
}

type FieldName =
  | "amount"
  | "leverage"
  | "triggerPrice"
  | "expireTime"
  | "takeProfit"
  | "stopLoss"
  | "trailingDistance";

type FieldErrors = Partial<Record<FieldName, string>>;

const DEFAULT_LEVERAGE = 10;

/** Read a datetime-local value (local time): null when empty, undefined when unreadable. */
function parseExpiry(text: string): Date | null | undefined {
  if (text.trim() === "") return null;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** Check an optional price-like field: empty, or a positive decimal. */
function optionalPositive(text: string): string | null {
  if (text.trim() === "") return null;
  const value = Decimal.tryParse(text);
  if (value === null) return "Enter a number";
  if (!value.isPositive()) return "Must be greater than zero";
  return null;
}

const FIELD_LABELS: Readonly<Record<Exclude<FieldName, "amount">, string>> = {
  leverage: "Leverage",
  triggerPrice: "Trigger price",
  expireTime: "Expiry",
  takeProfit: "Take profit",
  stopLoss: "Stop loss",
  trailingDistance: "Trailing distance",
};

/** The request field and the label of each way of sizing an order. */
const SIZE_FIELDS: Readonly<Record<SizeMode, readonly [string, string]>> = {
  quantity: ["quantity", "Quantity"],
  lots: ["volumeLots", "Lots"],
  margin: ["margin", "Margin"],
};

/** Map the server's field violations (snake or camel case) onto the panel's inputs. */
function serverFieldErrors(error: ApiError, sizeMode: SizeMode): FieldErrors {
  const fields: ServerFields<FieldName> = {
    amount: SIZE_FIELDS[sizeMode],
    ...Object.fromEntries(Object.entries(FIELD_LABELS).map(([field, label]) => [field, [field, label]])),
  };
  return fieldErrorsOf(error, fields);
}

/** Buy/sell ticket with an exact margin and liquidation preview. */
export function OrderPanel({ api, view, quotes, account, actions, storage }: OrderPanelProps) {
  const id = useId();
  const entry = useQuote(quotes, view?.spec.symbol ?? null);
  const [side, setSide] = useState<Side>("SIDE_BUY");
  const [execution, setExecution] = useState<Execution>("market");
  const [sizeMode, setSizeMode] = useState<SizeMode>(() => loadSizeMode(storage));
  const [amount, setAmount] = useState("");
  const [leverage, setLeverage] = useState(DEFAULT_LEVERAGE);
  const [triggerPrice, setTriggerPrice] = useState("");
  const [expiry, setExpiry] = useState("");
  const [takeProfit, setTakeProfit] = useState("");
  const [stopLoss, setStopLoss] = useState("");
  const [trailingDistance, setTrailingDistance] = useState("");
  const [fieldErrors, setFieldErrors] = useState<FieldErrors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [submitting, setSubmitting] = useState(false);
  const [oneClick, setOneClick] = useState(() => loadOneClick(storage));

  const maxLeverage = view?.spec.maxLeverage ?? 100;
  useEffect(() => {
    setLeverage((current) => Math.min(Math.max(1, current), maxLeverage));
  }, [maxLeverage]);
  useEffect(() => {
    setFieldErrors({});
    setFormError(null);
    setNotice(null);
    setTriggerPrice("");
    setExpiry("");
    setTakeProfit("");
    setStopLoss("");
    setTrailingDistance("");
  }, [view?.spec.symbol]);

  const pending = execution !== "market";
  const trigger = pending ? Decimal.tryParse(triggerPrice) : null;
  const price =
    view === null
      ? null
      : pending
        ? trigger
        : entry === undefined
          ? null
          : fillPrice(side, entry.bid, entry.ask);
  const preview =
    view === null || price === null || amount.trim() === ""
      ? null
      : previewOrder({ spec: view.spec, side, price, leverage, sizeMode, amount });
  const digits = view?.priceDigits ?? 2;
  const freeMargin = Decimal.tryParse(account?.freeMargin);
  const exceedsFree =
    preview !== null && preview.ok && freeMargin !== null && preview.preview.margin.gt(freeMargin);

  const validate = (): FieldErrors => {
    const errors: FieldErrors = {};
    if (amount.trim() === "") {
      errors.amount =
        sizeMode === "quantity"
          ? "Enter a quantity"
          : sizeMode === "lots"
            ? "Enter a volume in lots"
            : "Enter a margin";
    } else if (preview !== null && !preview.ok && preview.field === "amount") {
      errors.amount = preview.message;
    }
    if (pending) {
      if (trigger === null || !trigger.isPositive()) {
        errors.triggerPrice = "Enter a trigger price";
      } else if (view !== null && !trigger.isMultipleOf(view.spec.tickSize)) {
        errors.triggerPrice = `Must be a multiple of ${view.spec.tickSize.toPlainString()}`;
      }
      const expiresAt = parseExpiry(expiry);
      if (expiresAt === undefined) {
        errors.expireTime = "Enter a date and time";
      } else if (expiresAt !== null && expiresAt.getTime() <= Date.now()) {
        errors.expireTime = "Must be in the future";
      }
    }
    const tp = optionalPositive(takeProfit);
    if (tp !== null) errors.takeProfit = tp;
    const sl = optionalPositive(stopLoss);
    if (sl !== null) errors.stopLoss = sl;
    const trailing = optionalPositive(trailingDistance);
    if (trailing !== null) errors.trailingDistance = trailing;
    return errors;
  };

  /** Validate the ticket and send it on `chosen` side. */
  const submit = async (chosen: Side) => {
    if (view === null || submitting) return;
    setNotice(null);
    setFormError(null);
    const errors = validate();
    setFieldErrors(errors);
    if (Object.keys(errors).length > 0) return;
    if (!pending && price === null) {
      setFormError("No price for this instrument yet");
      return;
    }
    const size = { [SIZE_FIELDS[sizeMode][0]]: Decimal.parse(amount).toPlainString() };
    const stops = {
      ...(takeProfit.trim() === "" ? {} : { takeProfit: takeProfit.trim() }),
      ...(stopLoss.trim() === "" ? {} : { stopLoss: stopLoss.trim() }),
      ...(trailingDistance.trim() === "" ? {} : { trailingDistance: trailingDistance.trim() }),
    };
    setSubmitting(true);
    try {
      if (pending) {
        const type: OrderType = execution === "limit" ? "ORDER_TYPE_LIMIT" : "ORDER_TYPE_STOP";
        const expiresAt = parseExpiry(expiry);
        await api.placeOrder({
          symbol: view.spec.symbol,
          side: chosen,
          type,
          triggerPrice: triggerPrice.trim(),
          ...(expiresAt === null || expiresAt === undefined
            ? {}
            : { expireTime: expiresAt.toISOString() }),
          leverage,
          ...size,
          ...stops,
          clientOrderId: newClientOrderId(),
        });
        setNotice(`${execution === "limit" ? "Limit" : "Stop"} order placed`);
      } else {
        const position = await api.openPosition({
          symbol: view.spec.symbol,
          side: chosen,
          leverage,
          ...size,
          ...stops,
          clientOrderId: newClientOrderId(),
        });
        const lots =
          position.volumeLots === undefined ? "" : ` (${formatQuantity(position.volumeLots)} lots)`;
        setNotice(
          `Opened ${formatQuantity(position.quantity)} ${position.symbol}${lots} at ${formatPrice(position.entryPrice, digits)}`,
        );
      }
      await actions.refreshAccount();
    } catch (error) {
      if (error instanceof ApiError) {
        setFieldErrors(serverFieldErrors(error, sizeMode));
        setFormError(error.describe());
      } else {
        setFormError(describeError(error));
      }
    } finally {
      setSubmitting(false);
    }
  };

  const { field, errorText } = fieldErrorParts(id, fieldErrors, "order");

  const symbol = view?.spec.symbol ?? "";
  const sideWord = side === "SIDE_BUY" ? "Buy" : "Sell";
  const submitLabel = pending
    ? `Place ${sideWord.toLowerCase()} ${execution}`
    : `${sideWord} ${symbol}`;

  return (
    <section className="order-panel panel" aria-label="Order ticket">
      <label className="one-click" title="Buy and Sell send the order at once, without the order button">
        <input
          type="checkbox"
          checked={oneClick}
          onChange={(event) => {
            setOneClick(event.target.checked);
            saveOneClick(storage, event.target.checked);
          }}
          data-testid="one-click-toggle"
        />
        One-click trading
      </label>
      <form
        onSubmit={(event: FormEvent) => {
          event.preventDefault();
          void submit(side);
        }}
        noValidate
      >
        <div className="side-toggle" role="group" aria-label="Side">
          <button
            type="button"
            className={`side sell ${side === "SIDE_SELL" ? "active" : ""}`}
            aria-pressed={side === "SIDE_SELL"}
            onClick={() => {
              setSide("SIDE_SELL");
              if (oneClick) void submit("SIDE_SELL");
            }}
            data-testid="side-sell"
          >
            <span>Sell</span>
            <span className="num">{formatPrice(entry?.quote.bid, digits)}</span>
          </button>
          <button
            type="button"
            className={`side buy ${side === "SIDE_BUY" ? "active" : ""}`}
            aria-pressed={side === "SIDE_BUY"}
            onClick={() => {
              setSide("SIDE_BUY");
              if (oneClick) void submit("SIDE_BUY");
            }}
            data-testid="side-buy"
          >
            <span>Buy</span>
            <span className="num">{formatPrice(entry?.quote.ask, digits)}</span>
          </button>
        </div>

        <Segmented
          label="Order type"
          options={[
            { value: "market", label: "Market", testId: "type-market" },
            { value: "limit", label: "Limit", testId: "type-limit" },
            { value: "stop", label: "Stop", testId: "type-stop" },
          ]}
          value={execution}
          onChange={setExecution}
        />

        {pending && (
          <div className="field">
            <label htmlFor={`${id}-trigger`}>Trigger price</label>
            <input
              id={`${id}-trigger`}
              inputMode="decimal"
              autoComplete="off"
              value={triggerPrice}
              onChange={(event) => setTriggerPrice(event.target.value)}
              data-testid="order-trigger"
              {...field("triggerPrice")}
            />
            {errorText("triggerPrice")}
          </div>
        )}
        {pending && (
          <div className="field">
            <label htmlFor={`${id}-expiry`}>Expires (empty: good till cancelled)</label>
            <input
              id={`${id}-expiry`}
              type="datetime-local"
              step={1}
              value={expiry}
              onChange={(event) => setExpiry(event.target.value)}
              data-testid="order-expiry"
              {...field("expireTime")}
            />
            {errorText("expireTime")}
          </div>
        )}

        <div className="field">
          <div className="label-row">
            <label htmlFor={`${id}-amount`}>
              {sizeMode === "quantity"
                ? `Quantity (${view?.instrument.baseCurrency ?? "units"})`
                : sizeMode === "lots"
                  ? `Volume (lots of ${view?.spec.contractSize.toPlainString() ?? "1"} ${view?.instrument.baseCurrency ?? "units"})`
                  : "Margin (USD)"}
            </label>
            <Segmented
              label="Size in"
              mini
              options={[
                { value: "quantity", label: "Qty", testId: "size-quantity" },
                { value: "lots", label: "Lots", testId: "size-lots" },
                { value: "margin", label: "USD", testId: "size-margin" },
              ]}
              value={sizeMode}
              onChange={(mode) => {
                setSizeMode(mode);
                saveSizeMode(storage, mode);
              }}
            />
          </div>
          <input
            id={`${id}-amount`}
            inputMode="decimal"
            autoComplete="off"
            placeholder={
              view === null || sizeMode === "margin"
                ? "0.00"
                : `min ${(sizeMode === "lots" ? lotsStep(view.spec) : view.spec.minQuantity).toPlainString()}`
            }
            value={amount}
            onChange={(event) => setAmount(event.target.value)}
            data-testid="order-amount"
            {...field("amount")}
          />
          {errorText("amount")}
        </div>

        <div className="field">
          <div className="label-row">
            <label htmlFor={`${id}-leverage`}>Leverage</label>
            <span className="num leverage-value" data-testid="order-leverage-value">
              {leverage}×
            </span>
          </div>
          <input
            id={`${id}-leverage`}
            type="range"
            min={1}
            max={maxLeverage}
            step={1}
            value={leverage}
            onChange={(event) => setLeverage(Number(event.target.value))}
            aria-valuetext={`${leverage} times`}
            data-testid="order-leverage"
            {...field("leverage")}
          />
          <div className="range-ends muted">
            <span>1×</span>
            <span>{maxLeverage}×</span>
          </div>
          {errorText("leverage")}
        </div>

        <div className="stops">
          <div className="field">
            <label htmlFor={`${id}-tp`}>Take profit</label>
            <input
              id={`${id}-tp`}
              inputMode="decimal"
              autoComplete="off"
              placeholder="optional"
              value={takeProfit}
              onChange={(event) => setTakeProfit(event.target.value)}
              data-testid="order-tp"
              {...field("takeProfit")}
            />
            {errorText("takeProfit")}
          </div>
          <div className="field">
            <label htmlFor={`${id}-sl`}>Stop loss</label>
            <input
              id={`${id}-sl`}
              inputMode="decimal"
              autoComplete="off"
              placeholder="optional"
              value={stopLoss}
              onChange={(event) => setStopLoss(event.target.value)}
              data-testid="order-sl"
              {...field("stopLoss")}
            />
            {errorText("stopLoss")}
          </div>
          <div className="field">
            <label htmlFor={`${id}-trail`}>Trailing</label>
            <input
              id={`${id}-trail`}
              inputMode="decimal"
              autoComplete="off"
              placeholder="optional"
              value={trailingDistance}
              onChange={(event) => setTrailingDistance(event.target.value)}
              data-testid="order-trailing"
              {...field("trailingDistance")}
            />
            {errorText("trailingDistance")}
          </div>
        </div>

        <dl className="preview" data-testid="order-preview" aria-live="polite">
          <div>
            <dt>{pending ? "Trigger" : "Fill price"}</dt>
            <dd className="num" data-testid="preview-price">
              {price === null ? DASH : formatPrice(price.toString(), digits)}
            </dd>
          </div>
          <div>
            <dt>Quantity</dt>
            <dd className="num" data-testid="preview-quantity">
              {preview?.ok ? formatQuantity(preview.preview.quantity.toString()) : DASH}
            </dd>
          </div>
          <div>
            <dt>Lots</dt>
            <dd className="num" data-testid="preview-lots">
              {preview?.ok ? formatQuantity(preview.preview.lots.toString()) : DASH}
            </dd>
          </div>
          <div>
            <dt>Notional</dt>
            <dd
              className="num"
              data-testid="preview-notional"
              title={preview?.ok ? formatExactMoney(preview.preview.notional.toString()) : undefined}
            >
              {preview?.ok ? formatMoney(preview.preview.notional.toString()) : DASH}
            </dd>
          </div>
          <div>
            <dt>Required margin</dt>
            <dd
              className={`num ${exceedsFree ? "down" : ""}`}
              data-testid="preview-margin"
              title={preview?.ok ? formatExactMoney(preview.preview.margin.toString()) : undefined}
            >
              {preview?.ok ? formatMoney(preview.preview.margin.toString()) : DASH}
            </dd>
          </div>
          <div>
            <dt>Liquidation price</dt>
            <dd className="num" data-testid="preview-liquidation">
              {preview?.ok
                ? preview.preview.liquidationPrice.isPositive()
                  ? formatPrice(preview.preview.liquidationPrice.toString(), digits)
                  : "None"
                : DASH}
            </dd>
          </div>
        </dl>
        {preview !== null && !preview.ok && preview.field !== "amount" && (
          <p className="field-error">{preview.message}</p>
        )}
        {exceedsFree && <p className="field-error">Exceeds your free margin</p>}
        <FormFeedback error={formError} notice={notice} testIdPrefix="order" />
        <button
          type="submit"
          className={`primary submit ${side === "SIDE_BUY" ? "buy" : "sell"}`}
          disabled={submitting || view === null}
          data-testid="order-submit"
        >
          {submitting ? "Sending…" : submitLabel}
        </button>
      </form>
    </section>
  );
}
