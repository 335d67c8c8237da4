import { useId, useState } from "react";
import type { ApiClient } from "../lib/api";
import { Decimal } from "../lib/decimal";
import { formatOrderType, formatSide } from "../lib/format";
import { newClientOrderId } from "../lib/ids";
import type { ServerFields } from "../lib/errors";
import { loadDialogSizeMode } from "../lib/preferences";
import type { KeyValueStorage } from "../lib/session";
import { type QuantitySizeMode, sizeOfQuantity } from "../lib/trading";
import type { ModifyOrderRequest, Order } from "../lib/types";
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

interface OrderDialogProps {
  readonly api: ApiClient;
  readonly order: Order;
  readonly view: InstrumentView | undefined;
  readonly actions: Actions;
  /** Where the order ticket remembers its sizing, which the size field follows. */
  readonly storage: KeyValueStorage | null;
  readonly onClose: () => void;
}

/** The fields edited as typed: sent when the text changed, an empty clearable one clears it. */
type TextField = "triggerPrice" | "margin" | "takeProfit" | "stopLoss" | "trailingDistance";

interface FieldSpec {
  readonly name: TextField;
  readonly label: string;
  readonly testId: string;
  /** Whether an empty value removes the setting (otherwise the field is required). */
  readonly clearable: boolean;
}

const PRICE: FieldSpec = { name: "triggerPrice", label: "Price", testId: "edit-order-price", clearable: false };
const MARGIN: FieldSpec = { name: "margin", label: "Margin (USD)", testId: "edit-order-size", clearable: false };
const STOPS: readonly FieldSpec[] = [
  { name: "takeProfit", label: "Take profit", testId: "edit-order-tp", clearable: true },
  { name: "stopLoss", label: "Stop loss", testId: "edit-order-sl", clearable: true },
  { name: "trailingDistance", label: "Trailing distance", testId: "edit-order-trailing", clearable: true },
];

/**
 * Change a pending order's price, size, take profit, stop loss or trailing distance. An order
 * sized by a margin keeps its margin; one sized by a quantity is resized in units, or in lots
 * when the ticket sizes in lots.
 */
export function OrderDialog({ api, order, view, actions, storage, onClose }: OrderDialogProps) {
  const id = useId();
  const byMargin = order.quantity === undefined || order.quantity === "";
  const [mode] = useState<QuantitySizeMode>(() =>
    view === undefined ? "quantity" : loadDialogSizeMode(storage),
  );
  const unit = view?.instrument.baseCurrency ?? "units";
  const textFields = byMargin ? [PRICE, MARGIN, ...STOPS] : [PRICE, ...STOPS];
  const [values, setValues] = useState<Record<string, string>>(() =>
    Object.fromEntries(textFields.map((field) => [field.name, order[field.name] ?? ""])),
  );
  const [size, setSize] = useState(() =>
    byMargin || view === undefined || mode === "quantity"
      ? (order.quantity ?? "")
      : sizeOfQuantity(order.quantity, view.spec, mode),
  );
  const sizeField: readonly [string, string] = mode === "lots" ? ["volumeLots", "Lots"] : ["quantity", "Quantity"];
  const serverFields: ServerFields<string> = Object.fromEntries([
    ...textFields.map((field) => [field.name, [field.name, field.label] as const]),
    ...(byMargin ? [] : [["size", sizeField] as const]),
  ]);
  const { busy, error, fieldErrors, submit } = useSubmit(
    async () => {
      const changes: { -readonly [K in TextField | "quantity" | "volumeLots"]?: string } = {};
      for (const field of textFields) {
        const text = (values[field.name] ?? "").trim();
        if (text === "" && !field.clearable) throw new FieldFailure(field.name, `${field.label} is required`);
        if (text !== "" && Decimal.tryParse(text) === null) {
          throw new FieldFailure(field.name, `${field.label} is not a number`);
        }
        // Only changed fields are sent: an absent field stays as it is, an empty one is cleared.
        if (text !== (order[field.name] ?? "")) changes[field.name] = text;
      }
      if (!byMargin) {
        const quantity = sizeFieldQuantity("size", view?.spec, mode, size);
        const current = Decimal.tryParse(order.quantity);
        if (current === null || !quantity.eq(current)) {
          changes[mode === "lots" ? "volumeLots" : "quantity"] = Decimal.parse(size).toPlainString();
        }
      }
      if (Object.keys(changes).length === 0) return;
      const request: ModifyOrderRequest = { ...changes, clientOrderId: newClientOrderId() };
      await api.modifyOrder(order.id, request);
      await actions.refreshAccount();
    },
    onClose,
    serverFields,
  );
  const { field, errorText } = fieldErrorParts(id, fieldErrors, "edit-order");
  const input = (spec: FieldSpec, autoFocus: boolean) => (
    <div className="field" key={spec.name}>
      <DecimalInput
        label={spec.label}
        value={values[spec.name] ?? ""}
        onChange={(value) => setValues((current) => ({ ...current, [spec.name]: value }))}
        testId={spec.testId}
        autoFocus={autoFocus}
        inputProps={field(spec.name)}
      />
      {errorText(spec.name)}
    </div>
  );
  const title = `Edit ${formatSide(order.side).toLowerCase()} ${formatOrderType(order.type).toLowerCase()} · ${order.symbol}`;
  return (
    <Dialog title={title} onClose={onClose} testId="dialog-edit-order">
      <form onSubmit={(event) => void submit(event)} noValidate>
        <p className="muted">Leave take profit, stop loss or trailing empty to remove it.</p>
        {input(PRICE, true)}
        {byMargin ? (
          input(MARGIN, false)
        ) : (
          <div className="field">
            <SizeInput
              label={sizeLabel(mode === "lots" ? "Volume" : "Quantity", mode, view?.spec, unit)}
              value={size}
              onChange={setSize}
              testId="edit-order-size"
              spec={view?.spec}
              mode={mode}
              unit={unit}
              inputProps={field("size")}
              errorText={errorText("size")}
            />
          </div>
        )}
        {STOPS.map((spec) => input(spec, false))}
        <FormError error={error} />
        <FormActions busy={busy} label="Save" testId="edit-order-submit" onCancel={onClose} />
      </form>
    </Dialog>
  );
}
