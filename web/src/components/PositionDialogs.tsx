import { type FormEvent, useId, useRef, useState } from "react";
import type { ApiClient } from "../lib/api";
import { Decimal } from "../lib/decimal";
import { ApiError, describeError } from "../lib/errors";
import { formatMoney, formatQuantity, formatSide } from "../lib/format";
import type { ModifyPositionRequest, Position } from "../lib/types";
import type { InstrumentView } from "../state/instruments";
import { Dialog } from "./Dialog";
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

function describeFailure(error: unknown): string {
  if (error instanceof ApiError) {
    const violations = error.fieldViolations.map((v) => v.description).filter((d) => d !== "");
    return violations.length > 0 ? `${error.describe()}: ${violations.join("; ")}` : error.describe();
  }
  return describeError(error);
}

function useSubmit(run: () => Promise<void>, onDone: () => void) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await run();
      onDone();
    } catch (failure) {
      setError(describeFailure(failure));
      setBusy(false);
    }
  };
  return { busy, error, setError, submit };
}

/** Edit take profit, stop loss and trailing distance, or remove modifications by clearing. */
function StopsForm({ api, position, actions, onClose }: PositionDialogProps) {
  const id = useId();
  const [takeProfit, setTakeProfit] = useState(position.takeProfit ?? "");
  const [stopLoss, setStopLoss] = useState(position.stopLoss ?? "");
  const [trailing, setTrailing] = useState(position.trailingDistance ?? "");
  const { busy, error, setError, submit } = useSubmit(async () => {
    const request: { -readonly [K in keyof ModifyPositionRequest]: ModifyPositionRequest[K] } = {};
    const fields = [
      ["takeProfit", takeProfit, position.takeProfit ?? ""],
      ["stopLoss", stopLoss, position.stopLoss ?? ""],
      ["trailingDistance", trailing, position.trailingDistance ?? ""],
    ] as const;
    for (const [name, value, before] of fields) {
      const text = value.trim();
      if (text !== "" && Decimal.tryParse(text) === null) {
        throw new Error(`${name === "trailingDistance" ? "Trailing distance" : name === "takeProfit" ? "Take profit" : "Stop loss"} is not a number`);
      }
      // Only changed fields are sent: an absent field is left alone, an empty one cleared.
      if (text !== before) request[name] = text;
    }
    if (Object.keys(request).length === 0) return;
    await api.modifyPosition(position.id, { ...request, clientOrderId: `web-${crypto.randomUUID()}` } as ModifyPositionRequest);
    await actions.refreshAccount();
  }, onClose);
  return (
    <form onSubmit={(event) => void submit(event)} noValidate onChange={() => setError(null)}>
      <p className="muted">Leave a field empty to remove it.</p>
      <label htmlFor={`${id}-tp`}>Take profit</label>
      <input id={`${id}-tp`} inputMode="decimal" value={takeProfit} onChange={(e) => setTakeProfit(e.target.value)} data-testid="modify-tp" />
      <label htmlFor={`${id}-sl`}>Stop loss</label>
      <input id={`${id}-sl`} inputMode="decimal" value={stopLoss} onChange={(e) => setStopLoss(e.target.value)} data-testid="modify-sl" />
      <label htmlFor={`${id}-tr`}>Trailing distance</label>
      <input id={`${id}-tr`} inputMode="decimal" value={trailing} onChange={(e) => setTrailing(e.target.value)} data-testid="modify-trailing" />
      {error !== null && <p className="form-error" role="alert" data-testid="dialog-error">{error}</p>}
      <div className="dialog-actions">
        <button type="button" className="ghost" onClick={onClose}>Cancel</button>
        <button type="submit" className="primary" disabled={busy} data-testid="modify-submit">Save</button>
      </div>
    </form>
  );
}

/** Move cash from the balance into the position's margin. */
function MarginForm({ api, position, actions, onClose }: PositionDialogProps) {
  const id = useId();
  const [amount, setAmount] = useState("");
  const { busy, error, submit } = useSubmit(async () => {
    const value = Decimal.tryParse(amount);
    if (value === null || !value.isPositive()) throw new Error("Enter an amount greater than zero");
    if (value.significantScale() > 6) throw new Error("At most 6 decimals");
    await api.addMargin(position.id, value.toPlainString());
    await actions.refreshAccount();
  }, onClose);
  return (
    <form onSubmit={(event) => void submit(event)} noValidate>
      <p className="muted">
        Current margin {formatMoney(position.margin)} USD, liquidation at {position.liquidationPrice ?? "—"}.
      </p>
      <label htmlFor={`${id}-amount`}>Amount (USD)</label>
      <input id={`${id}-amount`} inputMode="decimal" value={amount} onChange={(e) => setAmount(e.target.value)} data-testid="margin-amount" autoFocus />
      {error !== null && <p className="form-error" role="alert" data-testid="dialog-error">{error}</p>}
      <div className="dialog-actions">
        <button type="button" className="ghost" onClick={onClose}>Cancel</button>
        <button type="submit" className="primary" disabled={busy} data-testid="margin-submit">Add margin</button>
      </div>
    </form>
  );
}

/** Close the whole position or part of it (a multiple of the lot step). */
function CloseForm({ api, position, view, actions, onClose }: PositionDialogProps) {
  const id = useId();
  const [quantity, setQuantity] = useState(formatQuantity(position.quantity));
  const close = async (all: boolean) => {
    if (all) {
      await api.closePosition(position.id);
    } else {
      const value = Decimal.tryParse(quantity);
      const open = Decimal.tryParse(position.quantity);
      if (value === null || !value.isPositive()) throw new Error("Enter a quantity greater than zero");
      if (view !== undefined && !value.isMultipleOf(view.spec.lotStep)) {
        throw new Error(`Quantity must be a multiple of ${view.spec.lotStep.toPlainString()}`);
      }
      if (open !== null && value.gt(open)) throw new Error(`At most ${open.toPlainString()}`);
      await api.closePosition(position.id, open !== null && value.eq(open) ? undefined : value.toPlainString());
    }
    await actions.refreshAccount();
    actions.refreshHistory();
  };
  // Which submit button was pressed; read when the form submits, in the same event.
  const closeAll = useRef(false);
  const { busy, error, submit } = useSubmit(() => close(closeAll.current), onClose);
  return (
    <form onSubmit={(event) => void submit(event)} noValidate>
      <p className="muted">
        {formatSide(position.side)} {formatQuantity(position.quantity)} {position.symbol} at {position.entryPrice}
      </p>
      <label htmlFor={`${id}-qty`}>Quantity to close</label>
      <input id={`${id}-qty`} inputMode="decimal" value={quantity} onChange={(e) => setQuantity(e.target.value)} data-testid="close-quantity" autoFocus />
      {error !== null && <p className="form-error" role="alert" data-testid="dialog-error">{error}</p>}
      <div className="dialog-actions">
        <button type="submit" className="ghost" disabled={busy} onClick={() => { closeAll.current = true; }} data-testid="close-all">Close all</button>
        <button type="submit" className="primary" disabled={busy} onClick={() => { closeAll.current = false; }} data-testid="close-submit">Close quantity</button>
      </div>
    </form>
  );
}

const TITLES: Readonly<Record<PositionAction, string>> = {
  stops: "Take profit / stop loss",
  margin: "Add margin",
  close: "Close position",
};

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
