import { useState } from "react";
import type { ApiClient } from "../lib/api";
import { Decimal } from "../lib/decimal";
import { formatOrderType, formatSide } from "../lib/format";
import { newClientOrderId } from "../lib/ids";
import type { ModifyOrderRequest, Order } from "../lib/types";
import { Dialog } from "./Dialog";
import { DecimalInput, FormActions, FormError, useSubmit } from "./forms";
import type { Actions } from "./TradingScreen";

interface OrderDialogProps {
  readonly api: ApiClient;
  readonly order: Order;
  readonly actions: Actions;
  readonly onClose: () => void;
}

type OrderField = "triggerPrice" | "quantity" | "margin" | "takeProfit" | "stopLoss" | "trailingDistance";

interface FieldSpec {
  readonly name: OrderField;
  readonly label: string;
  readonly testId: string;
  /** Whether an empty value removes the setting (otherwise the field is required). */
  readonly clearable: boolean;
}

/** The fields of the order's form: its size is edited in the unit it was placed in. */
function fieldsOf(order: Order): readonly FieldSpec[] {
  const byMargin = order.quantity === undefined || order.quantity === "";
  return [
    { name: "triggerPrice", label: "Price", testId: "edit-order-price", clearable: false },
    byMargin
      ? { name: "margin", label: "Margin (USD)", testId: "edit-order-size", clearable: false }
      : { name: "quantity", label: "Quantity", testId: "edit-order-size", clearable: false },
    { name: "takeProfit", label: "Take profit", testId: "edit-order-tp", clearable: true },
    { name: "stopLoss", label: "Stop loss", testId: "edit-order-sl", clearable: true },
    { name: "trailingDistance", label: "Trailing distance", testId: "edit-order-trailing", clearable: true },
  ];
}

/** Change a pending order's price, size, take profit, stop loss or trailing distance. */
export function OrderDialog({ api, order, actions, onClose }: OrderDialogProps) {
  const fields = fieldsOf(order);
  const [values, setValues] = useState<Record<string, string>>(() =>
    Object.fromEntries(fields.map((field) => [field.name, order[field.name] ?? ""])),
  );
  const { busy, error, submit } = useSubmit(async () => {
    const changes: { -readonly [K in OrderField]?: string } = {};
    for (const field of fields) {
      const text = (values[field.name] ?? "").trim();
      if (text === "" && !field.clearable) throw new Error(`${field.label} is required`);
      if (text !== "" && Decimal.tryParse(text) === null) {
        throw new Error(`${field.label} is not a number`);
      }
      // Only changed fields are sent: an absent field stays as it is, an empty one is cleared.
      if (text !== (order[field.name] ?? "")) changes[field.name] = text;
    }
    if (Object.keys(changes).length === 0) return;
    const request: ModifyOrderRequest = { ...changes, clientOrderId: newClientOrderId() };
    await api.modifyOrder(order.id, request);
    await actions.refreshAccount();
  }, onClose);
  const title = `Edit ${formatSide(order.side).toLowerCase()} ${formatOrderType(order.type).toLowerCase()} · ${order.symbol}`;
  return (
    <Dialog title={title} onClose={onClose} testId="dialog-edit-order">
      <form onSubmit={(event) => void submit(event)} noValidate>
        <p className="muted">Leave take profit, stop loss or trailing empty to remove it.</p>
        {fields.map((field, index) => (
          <DecimalInput
            key={field.name}
            label={field.label}
            value={values[field.name] ?? ""}
            onChange={(value) => setValues((current) => ({ ...current, [field.name]: value }))}
            testId={field.testId}
            autoFocus={index === 0}
          />
        ))}
        <FormError error={error} />
        <FormActions busy={busy} label="Save" testId="edit-order-submit" onCancel={onClose} />
      </form>
    </Dialog>
  );
}
