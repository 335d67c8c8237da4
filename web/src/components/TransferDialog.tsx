import { type FormEvent, useId, useState } from "react";
import type { ApiClient } from "../lib/api";
import { Decimal } from "../lib/decimal";
import { ApiError, describeError } from "../lib/errors";
import { formatExactMoney } from "../lib/format";
import { newClientOrderId } from "../lib/ids";
import { transferAmountError } from "../lib/spot";
import type { Account, TransferDirection, WalletBalance } from "../lib/types";
import { Dialog } from "./Dialog";

interface TransferDialogProps {
  readonly api: ApiClient;
  readonly account: Account | null;
  readonly wallet: readonly WalletBalance[];
  readonly onClose: () => void;
  /** Reload what the transfer changed. */
  readonly onDone: () => Promise<void>;
}

/** Move USD between the CFD balance and the spot wallet. */
export function TransferDialog({ api, account, wallet, onClose, onDone }: TransferDialogProps) {
  const id = useId();
  const [direction, setDirection] = useState<TransferDirection>("TRANSFER_DIRECTION_TO_SPOT");
  const [amount, setAmount] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [sending, setSending] = useState(false);
  // One key per dialog: pressing again after a lost answer cannot move the money twice.
  const [clientOrderId] = useState(newClientOrderId);
  const cfd = Decimal.tryParse(account?.balance);
  const spotUsd = Decimal.tryParse(wallet.find((b) => b.asset === "USD")?.available ?? "0");
  const toSpot = direction === "TRANSFER_DIRECTION_TO_SPOT";
  const source = toSpot ? cfd : spotUsd;

  const submit = async () => {
    const problem = transferAmountError(amount, source);
    setError(problem);
    if (problem !== null || sending) return;
    setSending(true);
    try {
      await api.transferFunds(Decimal.parse(amount).toPlainString(), direction, clientOrderId);
      await onDone();
      onClose();
    } catch (failure) {
      setError(
        failure instanceof ApiError && failure.reason === "INSUFFICIENT_BALANCE"
          ? "More than is available"
          : describeError(failure),
      );
    } finally {
      setSending(false);
    }
  };

  return (
    <Dialog title="Transfer USD" onClose={onClose} testId="transfer-dialog">
      <form
        onSubmit={(event: FormEvent) => {
          event.preventDefault();
          void submit();
        }}
        noValidate
      >
        <div className="segmented" role="group" aria-label="Direction">
          <button
            type="button"
            className={toSpot ? "active" : ""}
            aria-pressed={toSpot}
            onClick={() => setDirection("TRANSFER_DIRECTION_TO_SPOT")}
            data-testid="transfer-to-spot"
          >
            CFD → Spot
          </button>
          <button
            type="button"
            className={toSpot ? "" : "active"}
            aria-pressed={!toSpot}
            onClick={() => setDirection("TRANSFER_DIRECTION_TO_CFD")}
            data-testid="transfer-to-cfd"
          >
            Spot → CFD
          </button>
        </div>
        <dl className="preview">
          <div>
            <dt>CFD balance</dt>
            <dd className="num" data-testid="transfer-cfd-balance">
              {formatExactMoney(account?.balance)}
            </dd>
          </div>
          <div>
            <dt>Spot USD available</dt>
            <dd className="num" data-testid="transfer-spot-balance">
              {formatExactMoney(spotUsd?.toString())}
            </dd>
          </div>
        </dl>
        <label htmlFor={`${id}-amount`}>Amount (USD)</label>
        <input
          id={`${id}-amount`}
          inputMode="decimal"
          autoComplete="off"
          value={amount}
          onChange={(event) => setAmount(event.target.value)}
          aria-invalid={error !== null}
          data-testid="transfer-amount"
        />
        {source !== null && (
          <button
            type="button"
            className="small ghost"
            onClick={() => setAmount(source.toPlainString())}
            data-testid="transfer-max"
          >
            All: {formatExactMoney(source.toString())}
          </button>
        )}
        {error !== null && (
          <p className="form-error" role="alert" data-testid="transfer-error">
            {error}
          </p>
        )}
        <div className="dialog-actions">
          <button type="button" className="ghost" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={sending} data-testid="transfer-submit">
            {sending ? "Sending…" : "Transfer"}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
