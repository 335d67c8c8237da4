/** The parts every trading form shares: a decimal field, its error line, and submitting. */

import { type FormEvent, useId, useState } from "react";
import { ApiError, describeError, fieldSentence } from "../lib/errors";

export function describeFailure(error: unknown): string {
  if (error instanceof ApiError) {
    const details = error.fieldViolations
      .filter((v) => v.description !== "")
      .map((v) => fieldSentence(v.field.replace(/_/g, " "), v.description));
    return details.length > 0 ? `${error.describe()}: ${details.join("; ")}` : error.describe();
  }
  return describeError(error);
}

/** Run a form's action, keeping the dialog open with the reason when it fails. */
export function useSubmit(run: () => Promise<void>, onDone: () => void) {
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
  return { busy, error, submit };
}

export interface DecimalInputProps {
  readonly label: string;
  readonly value: string;
  readonly onChange: (value: string) => void;
  readonly testId: string;
  readonly autoFocus?: boolean;
}

interface TextFieldProps extends DecimalInputProps {
  readonly type?: "text" | "email" | "password";
  readonly autoComplete?: string;
  readonly inputMode?: "decimal" | "numeric" | "email";
}

/** A labelled input: the label names it, for screen readers and tests alike. */
export function TextField({
  label,
  value,
  onChange,
  testId,
  autoFocus = false,
  type = "text",
  autoComplete = "off",
  inputMode,
}: TextFieldProps) {
  const id = useId();
  return (
    <>
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        type={type}
        inputMode={inputMode}
        autoComplete={autoComplete}
        value={value}
        onChange={(event) => onChange(event.target.value)}
        data-testid={testId}
        autoFocus={autoFocus}
      />
    </>
  );
}

/** A labelled field for an exact decimal, typed as text. */
export function DecimalInput(props: DecimalInputProps) {
  return <TextField {...props} inputMode="decimal" />;
}

export function FormError({ error }: { readonly error: string | null }) {
  return error === null ? null : (
    <p className="form-error" role="alert" data-testid="dialog-error">
      {error}
    </p>
  );
}

interface FormActionsProps {
  readonly busy: boolean;
  readonly label: string;
  readonly testId: string;
  readonly onCancel: () => void;
}

/** A dialog form's buttons: Cancel, and the submit button named for what it does. */
export function FormActions({ busy, label, testId, onCancel }: FormActionsProps) {
  return (
    <div className="dialog-actions">
      <button type="button" className="ghost" onClick={onCancel}>
        Cancel
      </button>
      <button type="submit" className="primary" disabled={busy} data-testid={testId}>
        {label}
      </button>
    </div>
  );
}

interface FormFeedbackProps {
  readonly error: string | null;
  readonly notice: string | null;
  /** Test ids are `<prefix>-error` and `<prefix>-notice`. */
  readonly testIdPrefix: string;
}

/** Under an order ticket: why the last submission failed, or what it did. */
export function FormFeedback({ error, notice, testIdPrefix }: FormFeedbackProps) {
  return (
    <>
      {error !== null && (
        <p className="form-error" role="alert" data-testid={`${testIdPrefix}-error`}>
          {error}
        </p>
      )}
      {notice !== null && (
        <p className="form-notice" role="status" data-testid={`${testIdPrefix}-notice`}>
          {notice}
        </p>
      )}
    </>
  );
}

/**
 * The accessibility wiring of a form's per-field errors: `field(name)` marks an input invalid
 * and points it at its message, `errorText(name)` renders that message (test id
 * `<testIdPrefix>-<name>-error`). `id` is the form's `useId()`.
 */
export function fieldErrorParts<K extends string>(
  id: string,
  errors: Partial<Record<K, string>>,
  testIdPrefix: string,
) {
  const field = (name: K) => ({
    "aria-invalid": errors[name] !== undefined,
    "aria-describedby": errors[name] !== undefined ? `${id}-${name}-error` : undefined,
  });
  const errorText = (name: K) =>
    errors[name] === undefined ? null : (
      <p className="field-error" id={`${id}-${name}-error`} data-testid={`${testIdPrefix}-${name}-error`}>
        {errors[name]}
      </p>
    );
  return { field, errorText };
}
