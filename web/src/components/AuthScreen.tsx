import { type FormEvent, useId, useState } from "react";
import type { ApiClient } from "../lib/api";
import { ApiError, describeError, fieldSentence } from "../lib/errors";
import { requestPasswordReset } from "../lib/emailLinks";
import { secondFactorOf } from "../lib/security";

type Mode = "signin" | "signup";

interface AuthScreenProps {
  readonly api: ApiClient;
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
export function AuthScreen({ api }: AuthScreenProps) {
  const [mode, setMode] = useState<Mode>("signin");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [fieldErrors, setFieldErrors] = useState<FieldErrors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // Set once the server answered TOTP_REQUIRED: the password was right, a code is missing.
  const [needsCode, setNeedsCode] = useState(false);
  const [code, setCode] = useState("");
  // Asking for a password reset link instead of signing in; set once it was sent.
  const [forgot, setForgot] = useState(false);
  const [resetSent, setResetSent] = useState(false);
  const codeId = useId();
  const emailId = useId();
  const passwordId = useId();

  const askForReset = async () => {
    const local = localErrors(mode, email, "unused");
    setFieldErrors({ email: local.email });
    setFormError(null);
    if (local.email !== undefined) {
      return;
    }
    setBusy(true);
    try {
      await requestPasswordReset(api, email.trim());
      setResetSent(true);
    } catch (error) {
      setFormError(describeError(error));
    } finally {
      setBusy(false);
    }
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (forgot) {
      await askForReset();
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
    setForgot(false);
    setResetSent(false);
    setFieldErrors({});
    setFormError(null);
  };

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
        {forgot && resetSent && (
          <p className="hint" role="status" data-testid="auth-reset-sent">
            If an account has this address, a link to reset its password is on its way.
          </p>
        )}
        {!forgot && (
          <>
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
          </>
        )}
        {needsCode && mode === "signin" && !forgot && (
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
        )}
        {formError !== null && (
          <p className="form-error" role="alert" data-testid="auth-error">
            {formError}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy} data-testid="auth-submit">
          {busy
            ? "Please wait…"
            : forgot
              ? "Send reset link"
              : mode === "signup"
                ? "Create account"
                : "Sign in"}
        </button>
        {mode === "signin" && (
          <button
            type="button"
            className="link"
            onClick={() => {
              setForgot(!forgot);
              setResetSent(false);
              setFieldErrors({});
              setFormError(null);
            }}
            data-testid="auth-forgot"
          >
            {forgot ? "Back to sign in" : "Forgot your password?"}
          </button>
        )}
        {mode === "signup" && <p className="hint">New accounts start with a demo balance.</p>}
      </form>
    </main>
  );
}
