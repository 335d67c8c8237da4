import { type FormEvent, useEffect, useId, useState } from "react";
import type { ApiClient } from "../lib/api";
import type { Level } from "../lib/book";
import { Decimal } from "../lib/decimal";
import { ApiError, describeError, fieldSentence } from "../lib/errors";
import { DASH, formatExactMoney, formatPrice, formatQuantity } from "../lib/format";
import { newClientOrderId } from "../lib/ids";
import {
  type MarketSpec,
  type SpotExecution,
  type SpotSizeMode,
  describePlacement,
  formatFeeRate,
  previewSpotOrder,
} from "../lib/spot";
import type { Side } from "../lib/trading";
import type { TimeInForce, WalletBalance } from "../lib/types";
import { FormFeedback, fieldErrorParts } from "./forms";
import { Segmented } from "./Segmented";
import type { RefreshSpot } from "./SpotScreen";

interface SpotOrderFormProps {
  readonly api: ApiClient;
  readonly spec: MarketSpec | null;
  readonly bids: readonly Level[];
  readonly asks: readonly Level[];
  readonly wallet: readonly WalletBalance[];
  /** A price picked on the ladder (a new object each pick). */
  readonly pickedPrice: { readonly price: string } | null;
  readonly refreshSpot: RefreshSpot;
  readonly onTransfer: () => void;
}

const TIME_IN_FORCE: readonly {
  readonly value: TimeInForce;
  readonly label: string;
  readonly title: string;
}[] = [
  { value: "TIME_IN_FORCE_GTC", label: "GTC", title: "Good till cancelled: the rest rests in the book" },
  { value: "TIME_IN_FORCE_IOC", label: "IOC", title: "Immediate or cancel: the rest expires" },
  { value: "TIME_IN_FORCE_FOK", label: "FOK", title: "Fill or kill: all now or nothing" },
];

type FieldErrors = Partial<Record<"price" | "amount", string>>;

function balanceOf(wallet: readonly WalletBalance[], asset: string): Decimal {
  return Decimal.tryParse(wallet.find((b) => b.asset === asset)?.available) ?? Decimal.zero();
}

/** The spot order ticket, with the exact cost or proceeds and the fee before sending. */
export function SpotOrderForm(props: SpotOrderFormProps) {
  const { api, spec, bids, asks, wallet, pickedPrice, refreshSpot, onTransfer } = props;
  const id = useId();
  const [side, setSide] = useState<Side>("SIDE_BUY");
  const [execution, setExecution] = useState<SpotExecution>("limit");
  const [timeInForce, setTimeInForce] = useState<TimeInForce>("TIME_IN_FORCE_GTC");
  const [postOnly, setPostOnly] = useState(false);
  const [sizeMode, setSizeMode] = useState<SpotSizeMode>("quantity");
  const [price, setPrice] = useState("");
  const [amount, setAmount] = useState("");
  const [fieldErrors, setFieldErrors] = useState<FieldErrors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [submitting, setSubmitting] = useState(false);

  useEffect(() => {
    setPrice("");
    setFieldErrors({});
    setFormError(null);
    setNotice(null);
  }, [spec?.name]);
  useEffect(() => {
    if (pickedPrice !== null) {
      setPrice(pickedPrice.price);
      setExecution("limit");
    }
  }, [pickedPrice]);

  const buy = side === "SIDE_BUY";
  const limit = execution === "limit";
  const canPostOnly = limit && timeInForce === "TIME_IN_FORCE_GTC";
  const quoteAllowed = limit || buy;
  const effectiveSizeMode: SpotSizeMode = quoteAllowed ? sizeMode : "quantity";
  const result =
    spec === null || amount.trim() === ""
      ? null
      : previewSpotOrder({
          spec,
          side,
          execution,
          price,
          sizeMode: effectiveSizeMode,
          amount,
          postOnly: canPostOnly && postOnly,
          opposite: buy ? asks : bids,
        });
  const preview = result?.ok === true ? result.preview : null;
  const quoteAsset = spec?.quoteAsset ?? "USD";
  const baseAsset = spec?.baseAsset ?? "";
  const available = balanceOf(wallet, buy ? quoteAsset : baseAsset);
  // A buy limit holds its lock; a market buy pays its fills; a sell gives its quantity.
  const needed = preview === null ? null : buy ? (limit ? preview.lock : preview.total) : preview.quantity;
  const exceeds = needed !== null && needed.gt(available);
  const feeBps = canPostOnly && postOnly ? (spec?.makerFeeBps ?? 0) : (spec?.takerFeeBps ?? 0);

  const submit = async () => {
    if (spec === null || submitting) return;
    setNotice(null);
    setFormError(null);
    const errors: FieldErrors = {};
    if (limit && price.trim() === "") errors.price = "Enter a price";
    if (amount.trim() === "") errors.amount = "Enter an amount";
    if (result !== null && !result.ok) errors[result.field] = result.message;
    setFieldErrors(errors);
    if (Object.keys(errors).length > 0 || preview === null) return;
    setSubmitting(true);
    try {
      const response = await api.placeSpotOrder({
        market: spec.name,
        side,
        type: limit ? "SPOT_ORDER_TYPE_LIMIT" : "SPOT_ORDER_TYPE_MARKET",
        ...(limit ? { price: Decimal.parse(price).toPlainString(), timeInForce } : {}),
        ...preview.size,
        ...(canPostOnly && postOnly ? { postOnly: true } : {}),
        clientOrderId: newClientOrderId(),
      });
      setNotice(describePlacement(response, spec));
      setAmount("");
      await refreshSpot();
    } catch (error) {
      if (error instanceof ApiError) {
        const serverErrors: FieldErrors = {};
        const priceError = error.fieldError("price");
        if (priceError !== null) serverErrors.price = fieldSentence("Price", priceError);
        const sizeError = error.fieldError("quantity") ?? error.fieldError("quoteQuantity");
        if (sizeError !== null) serverErrors.amount = fieldSentence("Amount", sizeError);
        setFieldErrors(serverErrors);
        setFormError(
          error.reason === "INSUFFICIENT_BALANCE"
            ? "Not enough available in your spot wallet"
            : error.describe(),
        );
      } else {
        setFormError(describeError(error));
      }
    } finally {
      setSubmitting(false);
    }
  };

  const { field, errorText } = fieldErrorParts(id, fieldErrors, "spot");
  const digits = spec?.priceDigits ?? 2;
  const money = (value: Decimal | null | undefined) =>
    value === null || value === undefined ? DASH : formatExactMoney(value.toString());
  const estimate = preview?.estimated === true ? "≈ " : "";

  return (
    <section className="order-panel panel spot-order" aria-label="Spot order ticket">
      <form
        onSubmit={(event: FormEvent) => {
          event.preventDefault();
          void submit();
        }}
        noValidate
      >
        <div className="side-toggle" role="group" aria-label="Side">
          <button
            type="button"
            className={`side buy ${buy ? "active" : ""}`}
            aria-pressed={buy}
            onClick={() => setSide("SIDE_BUY")}
            data-testid="spot-side-buy"
          >
            Buy {baseAsset}
          </button>
          <button
            type="button"
            className={`side sell ${buy ? "" : "active"}`}
            aria-pressed={!buy}
            onClick={() => setSide("SIDE_SELL")}
            data-testid="spot-side-sell"
          >
            Sell {baseAsset}
          </button>
        </div>

        <Segmented
          label="Order type"
          options={[
            { value: "limit", label: "Limit", testId: "spot-type-limit" },
            { value: "market", label: "Market", testId: "spot-type-market" },
          ]}
          value={execution}
          onChange={setExecution}
        />

        <div className="wallet-line">
          <span className="muted">Available</span>
          <span className="num" data-testid="spot-available">
            {buy ? formatExactMoney(available.toString()) : formatQuantity(available.toString())}{" "}
            {buy ? quoteAsset : baseAsset}
          </span>
          <button type="button" className="small ghost" onClick={onTransfer} data-testid="spot-transfer-open">
            Transfer
          </button>
        </div>

        {limit && (
          <div className="field">
            <label htmlFor={`${id}-price`}>Price ({quoteAsset})</label>
            <input
              id={`${id}-price`}
              inputMode="decimal"
              autoComplete="off"
              value={price}
              onChange={(event) => setPrice(event.target.value)}
              data-testid="spot-price"
              {...field("price")}
            />
            {errorText("price")}
          </div>
        )}

        <div className="field">
          <div className="label-row">
            <label htmlFor={`${id}-amount`}>
              {effectiveSizeMode === "quantity"
                ? `Quantity (${baseAsset})`
                : limit
                  ? `Total (${quoteAsset})`
                  : `Spend (${quoteAsset}, fee on top)`}
            </label>
            <Segmented
              label="Size in"
              mini
              options={[
                { value: "quantity", label: baseAsset || "Qty", testId: "spot-size-quantity" },
                {
                  value: "quote",
                  label: quoteAsset,
                  testId: "spot-size-quote",
                  disabled: !quoteAllowed,
                  title: quoteAllowed ? undefined : "A market sell is sized by quantity",
                },
              ]}
              value={effectiveSizeMode}
              onChange={setSizeMode}
            />
          </div>
          <input
            id={`${id}-amount`}
            inputMode="decimal"
            autoComplete="off"
            placeholder={
              effectiveSizeMode === "quantity" ? `step ${spec?.lotStep.toPlainString() ?? ""}` : "0.00"
            }
            value={amount}
            onChange={(event) => setAmount(event.target.value)}
            data-testid="spot-amount"
            {...field("amount")}
          />
          {errorText("amount")}
        </div>

        {limit && (
          <div className="tif-row">
            <Segmented
              label="Time in force"
              options={TIME_IN_FORCE.map((option) => ({
                ...option,
                testId: `spot-tif-${option.label.toLowerCase()}`,
              }))}
              value={timeInForce}
              onChange={setTimeInForce}
            />
            <label className="check" title="Refuse the order rather than let it trade at once (GTC only)">
              <input
                type="checkbox"
                checked={canPostOnly && postOnly}
                disabled={!canPostOnly}
                onChange={(event) => setPostOnly(event.target.checked)}
                data-testid="spot-post-only"
              />
              Post only
            </label>
          </div>
        )}

        <dl className="preview" data-testid="spot-preview" aria-live="polite">
          {!limit && (
            <div>
              <dt>Average price</dt>
              <dd className="num" data-testid="spot-preview-price">
                {preview === null || preview.averagePrice === null
                  ? DASH
                  : `${estimate}${formatPrice(preview.averagePrice.toString(), digits)}`}
              </dd>
            </div>
          )}
          <div>
            <dt>Quantity</dt>
            <dd className="num" data-testid="spot-preview-quantity">
              {preview === null ? DASH : `${estimate}${formatQuantity(preview.quantity.toString())} ${baseAsset}`}
            </dd>
          </div>
          <div>
            <dt>Value</dt>
            <dd className="num" data-testid="spot-preview-value">
              {preview === null ? DASH : `${estimate}${money(preview.value)}`}
            </dd>
          </div>
          <div>
            <dt>Fee ({formatFeeRate(feeBps)})</dt>
            <dd className="num" data-testid="spot-preview-fee">
              {preview === null ? DASH : `${estimate}${money(preview.fee)}`}
            </dd>
          </div>
          <div className="preview-total">
            <dt>{buy ? "Total cost" : "You receive"}</dt>
            <dd className={`num ${exceeds ? "down" : ""}`} data-testid="spot-preview-total">
              {preview === null ? DASH : `${estimate}${money(preview.total)} ${quoteAsset}`}
            </dd>
          </div>
          {limit && buy && (
            <div>
              <dt>Locked while open</dt>
              <dd className="num" data-testid="spot-preview-lock">
                {preview === null ? DASH : `${money(preview.lock)} ${quoteAsset}`}
              </dd>
            </div>
          )}
        </dl>
        {preview?.shortfall === true && (
          <p className="field-error">The book holds less than this; the rest would expire</p>
        )}
        {exceeds && <p className="field-error">More than you have available</p>}
        <FormFeedback error={formError} notice={notice} testIdPrefix="spot-order" />
        <button
          type="submit"
          className={`primary submit ${buy ? "buy" : "sell"}`}
          disabled={submitting || spec === null}
          data-testid="spot-submit"
        >
          {submitting ? "Sending…" : `${buy ? "Buy" : "Sell"} ${baseAsset}`}
        </button>
      </form>
    </section>
  );
}
