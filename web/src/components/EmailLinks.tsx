import { type FormEvent, useEffect, useState } from "react";
import type { ApiClient } from "../lib/api";
import { ApiError } from "../lib/errors";
import {
  type EmailLink,
  requestPasswordReset,
  resendVerification,
  resetPassword,
  verifyEmail,
} from "../lib/security";
import type { User } from "../lib/types";
import { describeFailure, TextField } from "./forms";

const LINK_FAILURES: Readonly<Record<string, string>> = {
  EMAIL_TOKEN_USED: "This link was already used.",
  EMAIL_TOKEN_EXPIRED: "This link has expired: ask for a new one.",
  EMAIL_TOKEN_INVALID: "This link is not valid.",
};

/** The sentence a refused mailed link (or the form it opened) earns. */
function linkFailure(error: unknown): string {
  const reason = error instanceof ApiError ? error.reason : null;
  return (reason !== null ? LINK_FAILURES[reason] : undefined) ?? describeFailure(error);
}

/** What a mailed link did, in a sentence. */
export interface Notice {
  readonly text: string;
  readonly failed: boolean;
}

interface NoticeProps extends Notice {
  readonly onDismiss: () => void;
}

/** One line over the page saying what a mailed link did. */
export function LinkNotice({ text, failed, onDismiss }: NoticeProps) {
  return (
    <div className={`link-notice ${failed ? "banner-danger" : "link-notice-done"}`} role="status" data-testid="link-notice">
      <span>{text}</span>
      <button type="button" className="ghost small" onClick={onDismiss} aria-label="Dismiss">
        ×
      </button>
    </div>
  );
}

/** Confirm the email address with each verification link opened; report the outcome. */
export function useEmailVerification(api: ApiClient, link: EmailLink | null): Notice | null {
  const [outcome, setOutcome] = useState<Notice | null>(null);
  useEffect(() => {
    setOutcome(null);
    if (link === null) return;
    let current = true;
    verifyEmail(api, link.token).then(
      () => current && setOutcome({ text: "Your email address is verified.", failed: false }),
      (error: unknown) => current && setOutcome({ text: linkFailure(error), failed: true }),
    );
    return () => {
      current = false;
    };
  }, [api, link]);
  return outcome;
}

interface ResetScreenProps {
  readonly api: ApiClient;
  readonly token: string;
  /** Called with the notice to show once the password was set. */
  readonly onDone: (notice: string) => void;
}

/** Set a new password with the token of a reset link. */
export function ResetPasswordScreen({ api, token, onDone }: ResetScreenProps) {
  const [password, setPassword] = useState("");
  const [again, setAgain] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    if (password.length < 8 || password.length > 128) {
      setError("Use 8 to 128 characters.");
      return;
    }
    if (password !== again) {
      setError("The two passwords differ.");
      return;
    }
    setBusy(true);
    try {
      await resetPassword(api, token, password);
      // Every session of the user ended, this browser's too if it had one.
      await api.signout();
      onDone("Your password is changed: sign in with the new one.");
    } catch (failure) {
      setError(linkFailure(failure));
      setBusy(false);
    }
  };
  return (
    <main className="auth">
      <form className="auth-card" onSubmit={(event) => void submit(event)} noValidate data-testid="reset-screen">
        <h1 className="brand">
          CFD <span>Mesh</span>
        </h1>
        <p>Choose a new password. Every device signed in to the account will be signed out.</p>
        <TextField
          label="New password"
          type="password"
          autoComplete="new-password"
          value={password}
          onChange={setPassword}
          testId="reset-password"
        />
        <TextField
          label="New password again"
          type="password"
          autoComplete="new-password"
          value={again}
          onChange={setAgain}
          testId="reset-password-again"
        />
        {error !== null && (
          <p className="form-error" role="alert" data-testid="reset-error">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy} data-testid="reset-submit">
          {busy ? "Please wait…" : "Set password"}
        </button>
      </form>
    </main>
  );
}

interface ForgotFormProps {
  readonly api: ApiClient;
  readonly email: string;
  readonly onBack: () => void;
}

/** Ask for a reset link; the answer never says whether the address has an account. */
export function ForgotPasswordForm({ api, email: initial, onBack }: ForgotFormProps) {
  const [email, setEmail] = useState(initial);
  const [sent, setSent] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email.trim())) {
      setError("Enter an email address like name@example.com");
      return;
    }
    setBusy(true);
    try {
      await requestPasswordReset(api, email.trim());
      setSent(true);
    } catch (failure) {
      setError(describeFailure(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="auth-card" onSubmit={(event) => void submit(event)} noValidate data-testid="forgot-form">
      <h1 className="brand">
        CFD <span>Mesh</span>
      </h1>
      <p>We will email a link to set a new password.</p>
      <TextField
        label="Email"
        type="email"
        autoComplete="email"
        value={email}
        onChange={setEmail}
        testId="forgot-email"
      />
      {error !== null && (
        <p className="form-error" role="alert" data-testid="forgot-error">
          {error}
        </p>
      )}
      {sent && (
        <p className="form-notice" role="status" data-testid="forgot-sent">
          If an account uses this address, a link is on its way. It works once, for a limited time.
        </p>
      )}
      <button type="submit" className="primary" disabled={busy} data-testid="forgot-submit">
        {busy ? "Please wait…" : sent ? "Send again" : "Send link"}
      </button>
      <button type="button" className="ghost" onClick={onBack} data-testid="forgot-back">
        Back to sign in
      </button>
    </form>
  );
}

interface VerifyBannerProps {
  readonly api: ApiClient;
  readonly user: User;
}

/** While the address is unverified: a line asking to confirm it, with a way to get a new link. */
export function VerifyEmailBanner({ api, user }: VerifyBannerProps) {
  const [fresh, setFresh] = useState<boolean | null>(null);
  const [state, setState] = useState<"idle" | "busy" | "sent" | "failed">("idle");
  const [dismissed, setDismissed] = useState(false);
  useEffect(() => {
    let current = true;
    // The session's copy of the user dates from sign-in; ask for the current state.
    api.getUser().then(
      (latest) => current && setFresh(latest.emailVerified === true),
      () => undefined,
    );
    return () => {
      current = false;
    };
  }, [api]);
  // Shown once the service confirmed the address is unverified (not in the meantime).
  if (dismissed || user.emailVerified === true || fresh !== false) return null;
  const text =
    state === "sent"
      ? `A new link is on its way to ${user.email}.`
      : state === "failed"
        ? "The link could not be sent; try again in a minute."
        : `Confirm that ${user.email} is yours with the link we mailed to it.`;
  return (
    <div className="link-notice link-notice-pending" role="status" data-testid="verify-email-banner">
      <span data-testid="verify-email-text">{text}</span>
      <span>
        <button
          type="button"
          className="ghost small"
          disabled={state === "busy" || state === "sent"}
          onClick={() => {
            setState("busy");
            resendVerification(api).then(
              () => setState("sent"),
              () => setState("failed"),
            );
          }}
          data-testid="verify-email-resend"
        >
          Send a new link
        </button>
        <button type="button" className="ghost small" onClick={() => setDismissed(true)} aria-label="Dismiss">
          ×
        </button>
      </span>
    </div>
  );
}
