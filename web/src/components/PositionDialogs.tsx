import { useId, useRef, useState } from "react";
import type { ApiClient } from "../lib/api";
import { Decimal } from "../lib/decimal";
import { formatExactMoney, formatPrice, formatQuantity, formatSide } from "../lib/format";
import { newClientOrderId } from "../lib/ids";
import { loadDialogSizeMode } from "../lib/preferences";
import type { KeyValueStorage } from "../lib/session";
import { type QuantitySizeMode, sizeOfQuantity } from "../lib/trading";
import type { ClosePart, ModifyPositionRequest, Position } from "../lib/types";
import type { InstrumentView } from "../state/instruments";
import { Dialog } from "./Dialog";
import {
  DecimalInput,
  FieldFailure,
  FormActions,
  FormError,
  SizeInput,
  fieldErrorParts,
  sizeFieldQuantity,
  sizeLabel,
  useSubmit,
} from "./forms";
import type { Actions } from "./TradingScreen";

export type PositionAction = "stops" | "margin" | "close";

interface PositionDialogProps {
  readonly api: ApiClient;
  readonly position: Position;
  readonly view: InstrumentView | undefined;
  readonly action: PositionAction;
  /** Where the order ticket remembers its sizing, which the close dialog follows. */
  readonly storage: KeyValueStorage | null;
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

/** Close the whole position or part of it (a multiple of the lot step), in units or lots. */
function CloseForm({ api, position, view, storage, actions, onClose }: PositionDialogProps) {
  const id = useId();
  const [mode] = useState<QuantitySizeMode>(() =>
    view === undefined ? "quantity" : loadDialogSizeMode(storage),
  );
  const unit = view?.instrument.baseCurrency ?? "units";
  const [size, setSize] = useState(() =>
    view === undefined
      ? (Decimal.tryParse(position.quantity)?.toPlainString() ?? "")
      : sizeOfQuantity(position.quantity, view.spec, mode),
  );
  // Which submit button was pressed; read when the form submits, in the same event.
  const closeAll = useRef(false);
  const [requestField, label] = mode === "lots" ? ["volumeLots", "Lots"] : ["quantity", "Quantity"];
  const { busy, error, fieldErrors, submit } = useSubmit(
    async () => {
      const open = Decimal.tryParse(position.quantity);
      let part: ClosePart | undefined;
      if (!closeAll.current) {
        const quantity = sizeFieldQuantity("size", view?.spec, mode, size);
        if (open !== null && quantity.gt(open)) {
          const most = view === undefined ? open.toPlainString() : sizeOfQuantity(position.quantity, view.spec, mode);
          throw new FieldFailure("size", `At most ${most}`);
        }
        const typed = Decimal.parse(size).toPlainString();
        part =
          open !== null && quantity.eq(open)
            ? undefined
            : mode === "lots"
              ? { volumeLots: typed }
              : { quantity: typed };
      }
      await api.closePosition(position.id, part, newClientOrderId());
      await actions.refreshAccount();
      actions.refreshHistory();
    },
    onClose,
    { size: [requestField, label] },
  );
  const { field, errorText } = fieldErrorParts(id, fieldErrors, "close");
  return (
    <form onSubmit={(event) => void submit(event)} noValidate>
      <p className="muted">
        {formatSide(position.side)} {formatQuantity(position.quantity)} {position.symbol}
        {position.volumeLots === undefined ? "" : ` (${formatQuantity(position.volumeLots)} lots)`} at{" "}
        {formatPrice(position.entryPrice, digitsOf(view))}
      </p>
      <SizeInput
        label={sizeLabel(mode === "lots" ? "Volume to close" : "Quantity to close", mode, view?.spec, unit)}
        value={size}
        onChange={setSize}
        testId="close-quantity"
        autoFocus
        spec={view?.spec}
        mode={mode}
        unit={unit}
        inputProps={field("size")}
        errorText={errorText("size")}
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
