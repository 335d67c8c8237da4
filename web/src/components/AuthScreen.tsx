import { type FormEvent, useEffect, useId, useState } from "react";
import type { ApiClient } from "../lib/api";
import { ApiError, describeError, fieldSentence } from "../lib/errors";
import {
  type IdentityProvider,
  type SigninChallenge,
  currentReturnUrl,
  followReturnUrl,
  listProviders,
  startProviderSignin,
  tabStorage,
} from "../lib/providers";
import { secondFactorOf } from "../lib/security";
import { ForgotPasswordForm } from "./EmailLinks";

type Mode = "signin" | "signup";

interface AuthScreenProps {
  readonly api: ApiClient;
  /** A message to show on opening, such as why a sign-in through a provider failed. */
  readonly notice?: string | null;
  /** A provider sign-in that waits for the second factor: the page asks for the code. */
  readonly challenge?: SigninChallenge | null;
}

interface FieldErrors {
  readonly email?: string;
  readonly password?: string;
}

/** Validate locally what the server would refuse anyway, so the user learns it at once. */
function localErrors(mode: Mode, email: string, password: string): FieldErrors {
  const errors: { email?: string; password?: string } = {};
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email.trim())) {
    errors.email = "Enter an email address like name@example.com";
  }
  if (mode === "signup" && (password.length < 8 || password.length > 128)) {
    errors.password = "Use 8 to 128 characters";
  } else if (password === "") {
    errors.password = "Enter your password";
  }
  return errors;
}

/** Sign up or sign in; field errors come from the API's BadRequest details. */
export function AuthScreen({ api, notice = null, challenge = null }: AuthScreenProps) {
  const [mode, setMode] = useState<Mode>("signin");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [fieldErrors, setFieldErrors] = useState<FieldErrors>({});
  const [formError, setFormError] = useState<string | null>(notice);
  const [providers, setProviders] = useState<IdentityProvider[]>([]);
  const [busy, setBusy] = useState(false);
  // Set once the server answered TOTP_REQUIRED: the password was right, a code is missing.
  const [needsCode, setNeedsCode] = useState(challenge !== null);
  // The ticket of a provider sign-in that answered TOTP_REQUIRED: the code completes it.
  const [ticket, setTicket] = useState<string | null>(challenge?.signinTicket ?? null);
  const [code, setCode] = useState("");
  const [forgot, setForgot] = useState(false);
  const codeId = useId();
  const emailId = useId();
  const passwordId = useId();

  useEffect(() => {
    let live = true;
    // Without providers (none configured, or the list failed) the buttons are simply absent.
    listProviders(api).then(
      (listed) => live && setProviders(listed),
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, [api]);

  const continueWith = async (provider: string) => {
    const flows = tabStorage();
    if (flows === null) {
      setFormError("This browser does not allow signing in with a provider here.");
      return;
    }
    setBusy(true);
    try {
      window.location.assign(
        await startProviderSignin(api, flows, provider, currentReturnUrl(window.location)),
      );
    } catch (error) {
      setFormError(describeError(error));
      setBusy(false);
    }
  };

  const verifyProviderSignin = async (signinTicket: string) => {
    setFormError(null);
    if (code.trim() === "") {
      setFormError("Enter the code from your authenticator app (or a recovery code).");
      return;
    }
    setBusy(true);
    try {
      followReturnUrl(await api.verifyProviderSignin(signinTicket, secondFactorOf(code)));
    } catch (error) {
      if (error instanceof ApiError && error.reason === "SIGNIN_TICKET_INVALID") {
        // Expired or used: the provider sign-in must start again.
        setTicket(null);
        setNeedsCode(false);
        setCode("");
      }
      setFormError(
        error instanceof ApiError && error.reason === "INVALID_CREDENTIALS"
          ? "That code is wrong or was already used."
          : describeError(error),
      );
      setBusy(false);
    }
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (ticket !== null) {
      await verifyProviderSignin(ticket);
      return;
    }
    const local = localErrors(mode, email, password);
    setFieldErrors(local);
    setFormError(null);
    if (local.email !== undefined || local.password !== undefined) {
      return;
    }
    setBusy(true);
    try {
      if (mode === "signup") {
        await api.signup(email.trim(), password);
      } else {
        await api.signin(email.trim(), password, needsCode ? secondFactorOf(code) : {});
      }
    } catch (error) {
      if (error instanceof ApiError) {
        const email = error.fieldError("email");
        const password = error.fieldError("password");
        const server: FieldErrors = {
          email: email === null ? undefined : fieldSentence("Email", email),
          password: password === null ? undefined : fieldSentence("Password", password),
        };
        setFieldErrors(server);
        if (error.reason === "TOTP_REQUIRED") {
          setNeedsCode(true);
          setFormError("Enter the code from your authenticator app (or a recovery code).");
        } else if (error.reason === "EMAIL_TAKEN") {
          setFieldErrors({ ...server, email: error.describe() });
        } else if (server.email === undefined && server.password === undefined) {
          setFormError(error.describe());
        }
      } else {
        setFormError(describeError(error));
      }
      setBusy(false);
    }
  };

  const switchMode = (next: Mode) => {
    setMode(next);
    setFieldErrors({});
    setFormError(null);
  };

  const codePrompt = (
    <>
      <label htmlFor={codeId}>Authentication code</label>
      <input
        id={codeId}
        autoComplete="one-time-code"
        inputMode="numeric"
        value={code}
        onChange={(event) => setCode(event.target.value)}
        data-testid="auth-totp-code"
      />
    </>
  );

  const errorLine = formError !== null && (
    <p className="form-error" role="alert" data-testid="auth-error">
      {formError}
    </p>
  );

  if (ticket !== null) {
    return (
      <main className="auth">
        <form className="auth-card" onSubmit={(event) => void submit(event)} noValidate>
          <h1 className="brand">
            CFD <span>Mesh</span>
          </h1>
          <p className="hint" data-testid="auth-provider-challenge">
            Your account uses two-factor authentication: enter the code from your authenticator
            app (or a recovery code) to finish signing in.
          </p>
          {codePrompt}
          {errorLine}
          <button type="submit" className="primary" disabled={busy} data-testid="auth-submit">
            {busy ? "Please wait…" : "Sign in"}
          </button>
          <button
            type="button"
            className="link"
            disabled={busy}
            onClick={() => {
              setTicket(null);
              setNeedsCode(false);
              setCode("");
              setFormError(null);
            }}
            data-testid="auth-challenge-cancel"
          >
            Use another way to sign in
          </button>
        </form>
      </main>
    );
  }

  if (forgot) {
    return (
      <main className="auth">
        <ForgotPasswordForm api={api} email={email} onBack={() => setForgot(false)} />
      </main>
    );
  }

  return (
    <main className="auth">
      <form className="auth-card" onSubmit={(event) => void submit(event)} noValidate>
        <h1 className="brand">
          CFD <span>Mesh</span>
        </h1>
        <div className="segmented" role="tablist" aria-label="Account">
          <button
            type="button"
            role="tab"
            aria-selected={mode === "signin"}
            className={mode === "signin" ? "active" : ""}
            onClick={() => switchMode("signin")}
            data-testid="auth-mode-signin"
          >
            Sign in
          </button>
          <button
            type="button"
            role="tab"
            aria-selected={mode === "signup"}
            className={mode === "signup" ? "active" : ""}
            onClick={() => switchMode("signup")}
            data-testid="auth-mode-signup"
          >
            Create account
          </button>
        </div>
        <label htmlFor={emailId}>Email</label>
        <input
          id={emailId}
          type="email"
          autoComplete="email"
          value={email}
          onChange={(event) => setEmail(event.target.value)}
          aria-invalid={fieldErrors.email !== undefined}
          aria-describedby={fieldErrors.email !== undefined ? `${emailId}-error` : undefined}
          data-testid="auth-email"
        />
        {fieldErrors.email !== undefined && (
          <p className="field-error" id={`${emailId}-error`} data-testid="auth-email-error">
            {fieldErrors.email}
          </p>
        )}
        <label htmlFor={passwordId}>Password</label>
        <input
          id={passwordId}
          type="password"
          autoComplete={mode === "signup" ? "new-password" : "current-password"}
          value={password}
          onChange={(event) => setPassword(event.target.value)}
          aria-invalid={fieldErrors.password !== undefined}
          aria-describedby={fieldErrors.password !== undefined ? `${passwordId}-error` : undefined}
          data-testid="auth-password"
        />
        {fieldErrors.password !== undefined && (
          <p className="field-error" id={`${passwordId}-error`} data-testid="auth-password-error">
            {fieldErrors.password}
          </p>
        )}
        {needsCode && mode === "signin" && codePrompt}
        {errorLine}
        <button type="submit" className="primary" disabled={busy} data-testid="auth-submit">
          {busy ? "Please wait…" : mode === "signup" ? "Create account" : "Sign in"}
        </button>
        {mode === "signup" && <p className="hint">New accounts start with a demo balance.</p>}
        {mode === "signin" && (
          <button type="button" className="link" onClick={() => setForgot(true)} data-testid="auth-forgot">
            Forgot your password?
          </button>
        )}
        {providers.length > 0 && (
          <div className="providers" data-testid="auth-providers">
            {providers.map((provider) => (
              <button
                key={provider.name}
                type="button"
                disabled={busy}
                onClick={() => void continueWith(provider.name)}
                data-testid={`auth-provider-${provider.name}`}
              >
                Continue with {provider.displayName ?? provider.name}
              </button>
            ))}
          </div>
        )}
      </form>
    </main>
  );
}
