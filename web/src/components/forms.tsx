/** The parts every trading form shares: a decimal field, its error line, and submitting. */

import { type FormEvent, type InputHTMLAttributes, type ReactNode, useId, useState } from "react";
import { ApiError, type ServerFields, describeError, fieldErrorsOf, fieldSentence } from "../lib/errors";
import { formatQuantity } from "../lib/format";
import type { Decimal } from "../lib/decimal";
import { type InstrumentSpec, type QuantitySizeMode, parsePositive, readSize } from "../lib/trading";

export function describeFailure(error: unknown): string {
  if (error instanceof ApiError) {
    const details = error.fieldViolations
      .filter((v) => v.description !== "")
      .map((v) => fieldSentence(v.field.replace(/_/g, " "), v.description));
    return details.length > 0 ? `${error.describe()}: ${details.join("; ")}` : error.describe();
  }
  return describeError(error);
}

/** A check of one field that failed before sending: its message goes under that field. */
export class FieldFailure extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Run a form's action, keeping the dialog open with the reason when it fails: a FieldFailure,
 * or a server violation of a field in `serverFields`, also lands under its field.
 */
export function useSubmit(
  run: () => Promise<void>,
  onDone: () => void,
  serverFields: ServerFields<string> = {},
) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [fieldErrors, setFieldErrors] = useState<Partial<Record<string, string>>>({});
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setFieldErrors({});
    try {
      await run();
      onDone();
    } catch (failure) {
      if (failure instanceof FieldFailure) {
        setFieldErrors({ [failure.field]: failure.message });
      } else {
        if (failure instanceof ApiError) setFieldErrors(fieldErrorsOf(failure, serverFields));
        setError(describeFailure(failure));
      }
      setBusy(false);
    }
  };
  return { busy, error, fieldErrors, submit };
}

export interface DecimalInputProps {
  readonly label: string;
  readonly value: string;
  readonly onChange: (value: string) => void;
  readonly testId: string;
  readonly autoFocus?: boolean;
  /** More attributes of the input, such as its aria-invalid wiring. */
  readonly inputProps?: InputHTMLAttributes<HTMLInputElement>;
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
  inputProps,
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
        {...inputProps}
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

interface SizeInputProps extends DecimalInputProps {
  /** The instrument's parameters; without them the size is in units and nothing is previewed. */
  readonly spec: InstrumentSpec | undefined;
  readonly mode: QuantitySizeMode;
  /** The base currency, naming the units. */
  readonly unit: string;
  /** The size's error line, from `fieldErrorParts`. */
  readonly errorText: ReactNode;
}

/** The size field of a dialog in units or lots, previewing the other figure under it. */
export function SizeInput({ spec, mode, unit, errorText, ...input }: SizeInputProps) {
  const size = spec === undefined ? null : readSize(spec, mode, input.value);
  const other =
    size === null || !size.ok
      ? null
      : mode === "lots"
        ? `${formatQuantity(size.quantity.toPlainString())} ${unit}`
        : `${formatQuantity(size.lots.toPlainString())} lots`;
  return (
    <>
      <DecimalInput {...input} />
      {other !== null && (
        <p className="muted" data-testid={`${input.testId}-preview`}>
          = {other}
        </p>
      )}
      {errorText}
    </>
  );
}

/** The label of a size field: the units, or the lots with their contract size. */
export function sizeLabel(what: string, mode: QuantitySizeMode, spec: InstrumentSpec | undefined, unit: string): string {
  return mode === "lots" && spec !== undefined
    ? `${what} (lots of ${spec.contractSize.toPlainString()} ${unit})`
    : `${what} (${unit})`;
}


/**
 * The quantity typed in a SizeInput, checked on the instrument's lot grid (without the
 * instrument, any positive number of units); a FieldFailure of `field` when it is not one.
 */
export function sizeFieldQuantity(
  field: string,
  spec: InstrumentSpec | undefined,
  mode: QuantitySizeMode,
  text: string,
): Decimal {
  if (spec === undefined) {
    const parsed = parsePositive(text);
    if (!parsed.ok) throw new FieldFailure(field, parsed.message);
    return parsed.value;
  }
  const read = readSize(spec, mode, text);
  if (!read.ok) throw new FieldFailure(field, read.message);
  return read.quantity;
}
