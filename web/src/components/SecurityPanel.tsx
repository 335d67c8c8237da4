import { type FormEvent, useCallback, useEffect, useId, useState } from "react";
import type { ApiClient } from "../lib/api";
import { describeError } from "../lib/errors";
import {
  type AccountSession,
  type TotpEnrolment,
  changeEmail,
  changePassword,
  confirmTotp,
  disableTotp,
  enrolTotp,
  listSessions,
  revokeSession,
  secondFactorOf,
} from "../lib/security";
import {
  type IdentityProvider,
  type LinkedIdentity,
  currentReturnUrl,
  listIdentities,
  listProviders,
  startIdentityLink,
  tabStorage,
  unlinkIdentity,
} from "../lib/providers";
import type { User } from "../lib/types";
import { Dialog } from "./Dialog";
import { TextField } from "./forms";
import { NotificationSettings } from "./NotificationSettings";

interface SecurityPanelProps {
  readonly api: ApiClient;
  /** Whether the user has two-factor authentication on, as GetUser said. */
  readonly totpEnabled: boolean;
}

function when(time: string | undefined): string {
  return time === undefined ? "—" : new Date(time).toLocaleString();
}

/** Change the password. */
function PasswordForm({ api }: { readonly api: ApiClient }) {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [message, setMessage] = useState<string | null>(null);
  const currentId = useId();
  const nextId = useId();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    try {
      const revoked = await changePassword(api, current, next);
      setCurrent("");
      setNext("");
      setMessage(`Password changed; ${revoked} other session(s) signed out.`);
    } catch (error) {
      setMessage(describeError(error));
    }
  };
  return (
    <form onSubmit={(event) => void submit(event)} data-testid="security-password">
      <h4>Password</h4>
      <label htmlFor={currentId}>Current password</label>
      <input
        id={currentId}
        type="password"
        autoComplete="current-password"
        value={current}
        onChange={(event) => setCurrent(event.target.value)}
        data-testid="security-current-password"
      />
      <label htmlFor={nextId}>New password</label>
      <input
        id={nextId}
        type="password"
        autoComplete="new-password"
        value={next}
        onChange={(event) => setNext(event.target.value)}
        data-testid="security-new-password"
      />
      <button type="submit" className="primary" data-testid="security-change-password">
        Change password
      </button>
      {message !== null && (
        <p role="status" data-testid="security-password-message">
          {message}
        </p>
      )}
    </form>
  );
}

/** Move the account to another email address, with the password as proof. */
function EmailForm({ api }: { readonly api: ApiClient }) {
  const [password, setPassword] = useState("");
  const [email, setEmail] = useState("");
  const [message, setMessage] = useState<string | null>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    try {
      const user = await changeEmail(api, password, email.trim());
      setPassword("");
      setEmail("");
      setMessage(`Your account now uses ${user.email}: open the link we mailed there to verify it.`);
    } catch (error) {
      setMessage(describeError(error));
    }
  };
  return (
    <form onSubmit={(event) => void submit(event)} data-testid="security-email">
      <h4>Email address</h4>
      <TextField
        label="New email address"
        type="email"
        autoComplete="email"
        value={email}
        onChange={setEmail}
        testId="security-new-email"
      />
      <TextField
        label="Password"
        type="password"
        autoComplete="current-password"
        value={password}
        onChange={setPassword}
        testId="security-email-password"
      />
      <button type="submit" className="primary" data-testid="security-change-email">
        Change email
      </button>
      {message !== null && (
        <p role="status" data-testid="security-email-message">
          {message}
        </p>
      )}
    </form>
  );
}

/** The active sessions, each but the current one revocable. */
function SessionList({ api }: { readonly api: ApiClient }) {
  const [sessions, setSessions] = useState<AccountSession[]>([]);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(async () => {
    try {
      setSessions(await listSessions(api));
      setError(null);
    } catch (failure) {
      setError(describeError(failure));
    }
  }, [api]);
  useEffect(() => {
    void load();
  }, [load]);
  const revoke = async (id: string) => {
    try {
      await revokeSession(api, id);
    } catch (failure) {
      setError(describeError(failure));
    }
    await load();
  };
  return (
    <section data-testid="security-sessions">
      <h4>Sessions</h4>
      {error !== null && <p role="alert">{error}</p>}
      <ul>
        {sessions.map((session) => (
          <li key={session.id} data-testid="security-session">
            <span>
              {session.userAgent || "Unknown client"} · {session.clientAddress || "unknown address"}
            </span>
            <span>
              signed in {when(session.createTime)}, last used {when(session.lastUseTime)}
            </span>
            {session.current === true ? (
              <strong>This session</strong>
            ) : (
              <button
                type="button"
                onClick={() => void revoke(session.id)}
                data-testid="security-revoke"
              >
                Sign out
              </button>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}

/** Turn two-factor authentication on (enrol, then confirm) or off. */
function TwoFactor({ api, enabled }: { readonly api: ApiClient; readonly enabled: boolean }) {
  const [on, setOn] = useState(enabled);
  const [enrolment, setEnrolment] = useState<TotpEnrolment | null>(null);
  const [recoveryCodes, setRecoveryCodes] = useState<string[]>([]);
  const [code, setCode] = useState("");
  const [password, setPassword] = useState("");
  const [message, setMessage] = useState<string | null>(null);
  const codeId = useId();
  const passwordId = useId();
  const run = async (action: () => Promise<void>) => {
    try {
      await action();
      setMessage(null);
    } catch (error) {
      setMessage(describeError(error));
    }
  };
  const enrol = () => run(async () => setEnrolment(await enrolTotp(api)));
  const confirm = () =>
    run(async () => {
      setRecoveryCodes(await confirmTotp(api, code.trim()));
      setEnrolment(null);
      setCode("");
      setOn(true);
    });
  const disable = () =>
    run(async () => {
      await disableTotp(api, password, secondFactorOf(code));
      setCode("");
      setPassword("");
      setRecoveryCodes([]);
      setOn(false);
    });
  const codeInput = (
    <>
      <label htmlFor={codeId}>{on ? "Code or recovery code" : "Code from the app"}</label>
      <input
        id={codeId}
        autoComplete="one-time-code"
        value={code}
        onChange={(event) => setCode(event.target.value)}
        data-testid="security-totp-code"
      />
    </>
  );
  return (
    <section data-testid="security-totp">
      <h4>Two-factor authentication</h4>
      <p data-testid="security-totp-state">{on ? "On" : "Off"}</p>
      {!on && enrolment === null && (
        <button type="button" onClick={() => void enrol()} data-testid="security-totp-enrol">
          Set up an authenticator app
        </button>
      )}
      {!on && enrolment !== null && (
        <div>
          <p>Add this account to your authenticator app with the key below, then enter a code.</p>
          <code data-testid="security-totp-secret">{enrolment.secret}</code>
          <p className="hint" data-testid="security-totp-uri">
            {enrolment.otpauthUri}
          </p>
          {codeInput}
          <button type="button" className="primary" onClick={() => void confirm()}
            data-testid="security-totp-confirm">
            Turn on
          </button>
        </div>
      )}
      {recoveryCodes.length > 0 && (
        <div>
          <p>Recovery codes, each usable once. Keep them safe: they are not shown again.</p>
          <ul data-testid="security-recovery-codes">
            {recoveryCodes.map((recovery) => (
              <li key={recovery}>
                <code>{recovery}</code>
              </li>
            ))}
          </ul>
        </div>
      )}
      {on && (
        <div>
          <label htmlFor={passwordId}>Password</label>
          <input
            id={passwordId}
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(event) => setPassword(event.target.value)}
            data-testid="security-totp-password"
          />
          {codeInput}
          <button type="button" onClick={() => void disable()} data-testid="security-totp-disable">
            Turn off
          </button>
        </div>
      )}
      {message !== null && <p role="alert">{message}</p>}
    </section>
  );
}

/** The identity providers linked to the user, each unlinkable, and the others to link. */
function LinkedProviders({ api }: { readonly api: ApiClient }) {
  const [providers, setProviders] = useState<IdentityProvider[]>([]);
  const [linked, setLinked] = useState<LinkedIdentity[]>([]);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(async () => {
    try {
      const [available, identities] = await Promise.all([listProviders(api), listIdentities(api)]);
      setProviders(available);
      setLinked(identities);
      setError(null);
    } catch (failure) {
      setError(describeError(failure));
    }
  }, [api]);
  useEffect(() => {
    void load();
  }, [load]);
  const unlink = async (provider: string) => {
    try {
      await unlinkIdentity(api, provider);
    } catch (failure) {
      setError(describeError(failure));
      return;
    }
    await load();
  };
  const link = async (provider: string) => {
    const flows = tabStorage();
    if (flows === null) {
      setError("This browser does not allow linking a provider here.");
      return;
    }
    try {
      window.location.assign(
        await startIdentityLink(api, flows, provider, currentReturnUrl(window.location)),
      );
    } catch (failure) {
      setError(describeError(failure));
    }
  };
  const nameOf = (name: string) =>
    providers.find((provider) => provider.name === name)?.displayName ?? name;
  const unlinked = providers.filter((p) => !linked.some((l) => l.provider === p.name));
  if (providers.length === 0 && linked.length === 0) {
    return null;
  }
  return (
    <section data-testid="security-providers">
      <h4>Sign-in providers</h4>
      {error !== null && <p role="alert">{error}</p>}
      <ul>
        {linked.map((identity) => (
          <li key={identity.provider} data-testid="security-linked-provider">
            <span>
              {nameOf(identity.provider)} · {identity.email || "no email"}
            </span>
            <span>linked {when(identity.linkTime)}</span>
            <button
              type="button"
              onClick={() => void unlink(identity.provider)}
              data-testid={`security-unlink-${identity.provider}`}
            >
              Unlink
            </button>
          </li>
        ))}
      </ul>
      {unlinked.map((provider) => (
        <button
          key={provider.name}
          type="button"
          onClick={() => void link(provider.name)}
          data-testid={`security-link-${provider.name}`}
        >
          Link {provider.displayName ?? provider.name}
        </button>
      ))}
    </section>
  );
}

/**
 * The account security screen: password, email address, sessions, two-factor authentication,
 * sign-in providers and the email notifications of trading events.
 */
export function SecurityPanel({ api, totpEnabled }: SecurityPanelProps) {
  return (
    <div className="security" data-testid="security-panel">
      <PasswordForm api={api} />
      <EmailForm api={api} />
      <SessionList api={api} />
      <TwoFactor api={api} enabled={totpEnabled} />
      <LinkedProviders api={api} />
      <NotificationSettings api={api} />
    </div>
  );
}

/** The user's email in the account bar, a button opening the Security dialog. */
export function SecurityButton({ api, user }: { readonly api: ApiClient; readonly user: User }) {
  const [open, setOpen] = useState(false);
  return (
    <>
      {/* The email itself is the button, so the account figures keep their room in the bar. */}
      <button
        type="button"
        className="user-email"
        style={{ background: "none", border: 0, padding: 0, font: "inherit", color: "inherit" }}
        title={`${user.email}: security settings`}
        aria-label={`Security settings of ${user.email}`}
        onClick={() => setOpen(true)}
        data-testid="user-email"
      >
        {user.email}
      </button>
      {open && (
        <Dialog title="Security" onClose={() => setOpen(false)} testId="security-dialog">
          <SecurityPanel api={api} totpEnabled={user.totpEnabled === true} />
        </Dialog>
      )}
    </>
  );
}
