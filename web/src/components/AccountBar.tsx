import { type ReactNode, useState } from "react";
import type { ApiClient } from "../lib/api";
import {
  formatExactMoney,
  formatExactSignedMoney,
  formatMoney,
  formatPercent,
  formatSignedMoney,
  signOf,
} from "../lib/format";
import { accountModes, marginAlert } from "../lib/margin";
import type { ConnectionState } from "../lib/realtime";
import type { Account, User } from "../lib/types";
import type { InstrumentView } from "../state/instruments";
import { type QuoteStore, useQuote } from "../state/quotes";
import { useNow } from "../state/useNow";
import { SecurityButton } from "./SecurityPanel";

/** A quote older than this is shown as stale. */
const STALE_AFTER_MS = 15_000;

interface AccountBarProps {
  readonly api: ApiClient;
  readonly user: User;
  readonly account: Account | null;
  readonly connection: ConnectionState;
  readonly quotes: QuoteStore;
  readonly selected: InstrumentView | null;
  /** Shown under the brand: the switch between the CFD and the spot views. */
  readonly children?: ReactNode;
}

interface FigureProps {
  readonly label: string;
  readonly value: string;
  readonly testId: string;
  readonly tone?: -1 | 0 | 1;
  /** The exact figure, shown on hover. */
  readonly exact?: string;
}

function Figure({ label, value, testId, tone = 0, exact }: FigureProps) {
  const toneClass = tone > 0 ? "up" : tone < 0 ? "down" : "";
  return (
    <div className="figure">
      <span className="figure-label">{label}</span>
      <span className={`figure-value num ${toneClass}`} data-testid={testId} title={exact}>
        {value}
      </span>
    </div>
  );
}

function ConnectionStatus({
  connection,
  quotes,
  selected,
}: Pick<AccountBarProps, "connection" | "quotes" | "selected">) {
  const now = useNow(1000);
  const entry = useQuote(quotes, selected?.spec.symbol ?? null);
  let label = "Live";
  let tone = "ok";
  if (connection === "offline") {
    label = "Offline — reconnecting";
    tone = "bad";
  } else if (connection === "connecting") {
    label = "Connecting…";
    tone = "warn";
  } else if (entry === undefined || now - entry.receivedAt > STALE_AFTER_MS) {
    label = "Prices stale";
    tone = "warn";
  }
  return (
    <span
      className={`status status-${tone}`}
      role="status"
      data-testid="connection-status"
      data-state={connection}
    >
      <span className="status-dot" aria-hidden="true" />
      {label}
    </span>
  );
}

/** Balance, equity, margins and the connection state, at the top of the page. */
export function AccountBar(props: AccountBarProps) {
  const { api, user, account, connection, quotes, selected, children } = props;
  const [signingOut, setSigningOut] = useState(false);
  const marginLevel = formatPercent(account?.marginLevel);
  const alert = marginAlert(account?.marginLevel);
  return (
    <header className="account-bar">
      <div className="brand-block">
        <div className="brand">
          CFD <span>Mesh</span>
        </div>
        {children}
        <span className="account-modes" data-testid="account-modes" title="Margin mode · position mode">
          {accountModes(account)}
        </span>
      </div>
      <div className="figures" data-testid="account-bar">
        <Figure
          label="Balance"
          value={formatMoney(account?.balance)}
          exact={formatExactMoney(account?.balance)}
          testId="account-balance"
        />
        <Figure
          label="Equity"
          value={formatMoney(account?.equity)}
          exact={formatExactMoney(account?.equity)}
          testId="account-equity"
        />
        <Figure
          label="Unrealized PnL"
          value={formatSignedMoney(account?.unrealizedPnl)}
          exact={formatExactSignedMoney(account?.unrealizedPnl)}
          testId="account-pnl"
          tone={signOf(account?.unrealizedPnl)}
        />
        <Figure
          label="Used margin"
          value={formatMoney(account?.usedMargin)}
          exact={formatExactMoney(account?.usedMargin)}
          testId="account-used-margin"
        />
        <Figure
          label="Free margin"
          value={formatMoney(account?.freeMargin)}
          exact={formatExactMoney(account?.freeMargin)}
          testId="account-free-margin"
        />
        {/* Shown only where an instrument charges them: most deployments have none. */}
        {signOf(account?.swap) !== 0 && (
          <Figure
            label="Swap"
            value={formatSignedMoney(account?.swap)}
            exact={formatExactSignedMoney(account?.swap)}
            testId="account-swap"
            tone={signOf(account?.swap)}
          />
        )}
        {signOf(account?.commission) !== 0 && (
          <Figure
            label="Commission"
            value={formatMoney(account?.commission)}
            exact={formatExactMoney(account?.commission)}
            testId="account-commission"
          />
        )}
        <div className={`figure margin-level margin-${alert}`} data-testid="margin-alert" data-state={alert}>
          {alert === "none" ? (
            <span className="figure-label">Margin level</span>
          ) : (
            <span className="figure-label margin-badge" role="alert">
              {alert === "danger" ? "Liquidation near" : "Margin call"}
            </span>
          )}
          <span className="figure-value num" data-testid="account-margin-level">
            {marginLevel}
          </span>
        </div>
      </div>
      <div className="session">
        <ConnectionStatus connection={connection} quotes={quotes} selected={selected} />
        <SecurityButton api={api} user={user} />
        <button
          type="button"
          className="ghost"
          disabled={signingOut}
          onClick={() => {
            setSigningOut(true);
            void api.signout();
          }}
          data-testid="signout"
        >
          Sign out
        </button>
      </div>
    </header>
  );
}
