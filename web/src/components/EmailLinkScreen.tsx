import { type FormEvent, useEffect, useId, useRef, useState } from "react";
import type { ApiClient } from "../lib/api";
import { type EmailLink, resetPassword, verifyEmail } from "../lib/emailLinks";
import { ApiError, describeError, fieldSentence } from "../lib/errors";

interface EmailLinkScreenProps {
  readonly api: ApiClient;
  readonly link: EmailLink;
  readonly onDone: () => void;
}

type Outcome = { readonly ok: boolean; readonly text: string };

/** Act on a link from an email: verify the address at once, or ask for the new password. */
export function EmailLinkScreen({ api, link, onDone }: EmailLinkScreenProps) {
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const [password, setPassword] = useState("");
  const [fieldError, setFieldError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const started = useRef(false);
  const passwordId = useId();

  useEffect(() => {
    if (link.action !== "verify-email" || started.current) {
      return;
    }
    // Once only: the token works once, and development mode runs effects twice.
    started.current = true;
    void (async () => {
      try {
        await verifyEmail(api, link.token);
        // A signed-in page picks up the verified address with its next tokens.
        if (api.sessions.get() !== null) {
          await api.refresh();
        }
        setOutcome({ ok: true, text: "Your email address is confirmed." });
      } catch (error) {
        setOutcome({ ok: false, text: describeError(error) });
      }
    })();
  }, [api, link]);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setFieldError(null);
    if (password.length < 8 || password.length > 128) {
      setFieldError("Use 8 to 128 characters");
      return;
    }
    setBusy(true);
    try {
      await resetPassword(api, link.token, password);
      // Every session ended with the reset, this page's too.
      await api.signout();
      setOutcome({ ok: true, text: "Your password is changed. Sign in with the new one." });
    } catch (error) {
      const field = error instanceof ApiError ? error.fieldError("new_password") : null;
      if (field !== null) {
        setFieldError(fieldSentence("Password", field));
      } else {
        setOutcome({ ok: false, text: describeError(error) });
      }
    } finally {
      setBusy(false);
    }
  };

  const title = link.action === "verify-email" ? "Confirm your email" : "Choose a new password";
  return (
    <main className="auth">
      <form className="auth-card" onSubmit={(event) => void submit(event)} noValidate>
        <h1 className="brand">
          CFD <span>Mesh</span>
        </h1>
        <h2>{title}</h2>
        {outcome === null && link.action === "verify-email" && <p>Checking the link…</p>}
        {outcome === null && link.action === "reset-password" && (
          <>
            <label htmlFor={passwordId}>New password</label>
            <input
              id={passwordId}
              type="password"
              autoComplete="new-password"
              value={password}
              onChange={(event) => setPassword(event.target.value)}
              aria-invalid={fieldError !== null}
              data-testid="reset-password"
            />
            {fieldError !== null && (
              <p className="field-error" data-testid="reset-password-error">
                {fieldError}
              </p>
            )}
            <button type="submit" className="primary" disabled={busy} data-testid="reset-submit">
              {busy ? "Please wait…" : "Set the new password"}
            </button>
          </>
        )}
        {outcome !== null && (
          <>
            <p
              className={outcome.ok ? "hint" : "form-error"}
              role="status"
              data-testid="email-link-outcome"
              data-ok={outcome.ok}
            >
              {outcome.text}
            </p>
            <button type="button" className="primary" onClick={onDone} data-testid="email-link-done">
              Continue
            </button>
          </>
        )}
      </form>
    </main>
  );
}
