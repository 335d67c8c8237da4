import { useRef, useState } from "react";
import type { ApiClient } from "../lib/api";
import { Decimal } from "../lib/decimal";
import { formatExactMoney, formatPrice, formatQuantity, formatSide } from "../lib/format";
import { newClientOrderId } from "../lib/ids";
import type { ModifyPositionRequest, Position } from "../lib/types";
import type { InstrumentView } from "../state/instruments";
import { Dialog } from "./Dialog";
import { DecimalInput, FormActions, FormError, useSubmit } from "./forms";
import type { Actions } from "./TradingScreen";

export type PositionAction = "stops" | "margin" | "close";

interface PositionDialogProps {
  readonly api: ApiClient;
  readonly position: Position;
  readonly view: InstrumentView | undefined;
  readonly action: PositionAction;
  readonly actions: Actions;
  readonly onClose: () => void;
}

function digitsOf(view: InstrumentView | undefined): number {
  return view?.priceDigits ?? 2;
}

const STOP_FIELDS = [
  { name: "takeProfit", label: "Take profit", testId: "modify-tp" },
  { name: "stopLoss", label: "Stop loss", testId: "modify-sl" },
  { name: "trailingDistance", label: "Trailing distance", testId: "modify-trailing" },
] as const;

type StopField = (typeof STOP_FIELDS)[number]["name"];

/** Set, change or clear take profit, stop loss and trailing distance. */
function StopsForm({ api, position, actions, onClose }: PositionDialogProps) {
  const [values, setValues] = useState<Record<StopField, string>>({
    takeProfit: position.takeProfit ?? "",
    stopLoss: position.stopLoss ?? "",
    trailingDistance: position.trailingDistance ?? "",
  });
  const { busy, error, submit } = useSubmit(async () => {
    const changes: { -readonly [K in StopField]?: string } = {};
    for (const field of STOP_FIELDS) {
      const text = values[field.name].trim();
      if (text !== "" && Decimal.tryParse(text) === null) {
        throw new Error(`${field.label} is not a number`);
      }
      // Only changed fields are sent: an absent field stays as it is, an empty one is cleared.
      if (text !== (position[field.name] ?? "")) {
        changes[field.name] = text;
      }
    }
    if (Object.keys(changes).length === 0) return;
    const request: ModifyPositionRequest = { ...changes, clientOrderId: newClientOrderId() };
    await api.modifyPosition(position.id, request);
    await actions.refreshAccount();
  }, onClose);
  return (
    <form onSubmit={(event) => void submit(event)} noValidate>
      <p className="muted">Leave a field empty to remove it.</p>
      {STOP_FIELDS.map((field, index) => (
        <DecimalInput
          key={field.name}
          label={field.label}
          value={values[field.name]}
          onChange={(value) => setValues((current) => ({ ...current, [field.name]: value }))}
          testId={field.testId}
          autoFocus={index === 0}
        />
      ))}
      <FormError error={error} />
      <FormActions busy={busy} label="Save" testId="modify-submit" onCancel={onClose} />
    </form>
  );
}

/** Move cash from the balance into the position's margin. */
function MarginForm({ api, position, view, actions, onClose }: PositionDialogProps) {
  const [amount, setAmount] = useState("");
  const { busy, error, submit } = useSubmit(async () => {
    const value = Decimal.tryParse(amount);
    if (value === null || !value.isPositive()) throw new Error("Enter an amount greater than zero");
    if (value.significantScale() > 6) throw new Error("At most 6 decimals");
    await api.addMargin(position.id, value.toPlainString(), newClientOrderId());
    await actions.refreshAccount();
  }, onClose);
  return (
    <form onSubmit={(event) => void submit(event)} noValidate>
      <p className="muted">
        Margin {formatExactMoney(position.margin)} USD, liquidation at{" "}
        {formatPrice(position.liquidationPrice, digitsOf(view))}. Adding margin moves the
        liquidation price away.
      </p>
      <DecimalInput
        label="Amount (USD)"
        value={amount}
        onChange={setAmount}
        testId="margin-amount"
        autoFocus
      />
      <FormError error={error} />
      <FormActions busy={busy} label="Add margin" testId="margin-submit" onCancel={onClose} />
    </form>
  );
}

/** Close the whole position or part of it (a multiple of the lot step). */
function CloseForm({ api, position, view, actions, onClose }: PositionDialogProps) {
  const [quantity, setQuantity] = useState(Decimal.tryParse(position.quantity)?.toPlainString() ?? "");
  // Which submit button was pressed; read when the form submits, in the same event.
  const closeAll = useRef(false);
  const { busy, error, submit } = useSubmit(async () => {
    const open = Decimal.tryParse(position.quantity);
    let partial: string | undefined;
    if (!closeAll.current) {
      const value = Decimal.tryParse(quantity);
      if (value === null || !value.isPositive()) {
        throw new Error("Enter a quantity greater than zero");
      }
      if (view !== undefined && !value.isMultipleOf(view.spec.lotStep)) {
        throw new Error(`Quantity must be a multiple of ${view.spec.lotStep.toPlainString()}`);
      }
      if (open !== null && value.gt(open)) {
        throw new Error(`At most ${open.toPlainString()}`);
      }
      partial = open !== null && value.eq(open) ? undefined : value.toPlainString();
    }
    await api.closePosition(position.id, partial, newClientOrderId());
    await actions.refreshAccount();
    actions.refreshHistory();
  }, onClose);
  return (
    <form onSubmit={(event) => void submit(event)} noValidate>
      <p className="muted">
        {formatSide(position.side)} {formatQuantity(position.quantity)} {position.symbol} at{" "}
        {formatPrice(position.entryPrice, digitsOf(view))}
      </p>
      <DecimalInput
        label="Quantity to close"
        value={quantity}
        onChange={setQuantity}
        testId="close-quantity"
        autoFocus
      />
      <FormError error={error} />
      <div className="dialog-actions">
        <button
          type="submit"
          className="ghost"
          disabled={busy}
          onClick={() => {
            closeAll.current = true;
          }}
          data-testid="close-all"
        >
          Close all
        </button>
        <button
          type="submit"
          className="primary"
          disabled={busy}
          onClick={() => {
            closeAll.current = false;
          }}
          data-testid="close-submit"
        >
          Close quantity
        </button>
      </div>
    </form>
  );
}

const TITLES: Readonly<Record<PositionAction, string>> = {
  stops: "Take profit / stop loss",
  margin: "Add margin",
  close: "Close position",
};

/** The dialog of one action on an open position. */
export function PositionDialog(props: PositionDialogProps) {
  const title = `${TITLES[props.action]} · ${props.position.symbol}`;
  return (
    <Dialog title={title} onClose={props.onClose} testId={`dialog-${props.action}`}>
      {props.action === "stops" && <StopsForm {...props} />}
      {props.action === "margin" && <MarginForm {...props} />}
      {props.action === "close" && <CloseForm {...props} />}
    </Dialog>
  );
}
