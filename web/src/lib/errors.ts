/** Errors of the public API (`google.rpc.Status` JSON) and their wording for people. */

export interface FieldViolation {
  readonly field: string;
  readonly description: string;
}

const ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo";
const BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest";

/** An error answer of the API, or a failure to reach it at all (status 0). */
export class ApiError extends Error {
  readonly httpStatus: number;
  readonly code: number;
  readonly reason: string | null;
  readonly fieldViolations: readonly FieldViolation[];
  /** The ErrorInfo's metadata: what the client needs to act on the error. */
  readonly metadata: Readonly<Record<string, string>>;

  constructor(
    httpStatus: number,
    code: number,
    message: string,
    reason: string | null,
    fieldViolations: readonly FieldViolation[],
    metadata: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = "ApiError";
    this.httpStatus = httpStatus;
    this.code = code;
    this.reason = reason;
    this.fieldViolations = fieldViolations;
    this.metadata = metadata;
  }

  /** The violation message for one request field, if the server named it. */
  fieldError(field: string): string | null {
    const wanted = normalizeField(field);
    const match = this.fieldViolations.find((v) => normalizeField(v.field) === wanted);
    return match === undefined ? null : match.description;
  }

  /** A sentence for the user: the reason in words, else the server's message. */
  describe(): string {
    return describeReason(this.reason, this.message);
  }
}

/**
 * Make a sentence of a field violation: the server writes descriptions to follow the field
 * name ("is required"), so those get the field's label in front.
 */
export function fieldSentence(label: string, description: string): string {
  return /^[a-z]/.test(description) ? `${label} ${description}` : description;
}

/** For fields of a form: the request field the server names in its violations, and its label. */
export type ServerFields<K extends string> = Readonly<Partial<Record<K, readonly [string, string]>>>;

/** The server's violations of a form's fields, each as a sentence under its label. */
export function fieldErrorsOf<K extends string>(
  error: ApiError,
  fields: ServerFields<K>,
): Partial<Record<K, string>> {
  const errors: Partial<Record<K, string>> = {};
  for (const [name, spec] of Object.entries(fields) as [K, readonly [string, string] | undefined][]) {
    if (spec === undefined) continue;
    const [requestField, label] = spec;
    const message = error.fieldError(requestField);
    if (message !== null) errors[name] = fieldSentence(label, message);
  }
  return errors;
}

/** Compare field paths regardless of snake_case or lowerCamelCase spelling. */
function normalizeField(field: string): string {
  return field.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Build an ApiError from an HTTP status and the parsed JSON body (any shape). */
export function parseApiError(httpStatus: number, body: unknown): ApiError {
  let code = 2;
  let message = `HTTP ${httpStatus}`;
  let reason: string | null = null;
  const violations: FieldViolation[] = [];
  const metadata: Record<string, string> = {};
  if (isRecord(body)) {
    if (typeof body.code === "number") {
      code = body.code;
    }
    if (typeof body.message === "string" && body.message !== "") {
      message = body.message;
    }
    const details = Array.isArray(body.details) ? body.details : [];
    for (const detail of details) {
      if (!isRecord(detail)) {
        continue;
      }
      if (detail["@type"] === ERROR_INFO_TYPE && typeof detail.reason === "string") {
        reason = detail.reason;
        if (isRecord(detail.metadata)) {
          for (const [key, value] of Object.entries(detail.metadata)) {
            if (typeof value === "string") {
              metadata[key] = value;
            }
          }
        }
      }
      if (detail["@type"] === BAD_REQUEST_TYPE && Array.isArray(detail.fieldViolations)) {
        for (const violation of detail.fieldViolations) {
          if (isRecord(violation) && typeof violation.field === "string") {
            violations.push({
              field: violation.field,
              description: typeof violation.description === "string" ? violation.description : "",
            });
          }
        }
      }
    }
  }
  return new ApiError(httpStatus, code, message, reason, violations, metadata);
}

const REASON_TEXT: Readonly<Record<string, string>> = {
  VALIDATION_FAILED: "Some fields are not valid",
  UNKNOWN_SYMBOL: "This instrument is not traded",
  INVALID_LEVERAGE: "The leverage is outside the allowed range",
  QUANTITY_TOO_SMALL: "The quantity is below the minimum for this instrument",
  INVALID_STOPS: "Take profit / stop loss are on the wrong side of the price",
  INSUFFICIENT_BALANCE: "Not enough free margin for this order",
  SLIPPAGE_EXCEEDED: "The price moved beyond the allowed slippage",
  PRICE_UNAVAILABLE: "No price is available for this instrument right now",
  POSITION_NOT_FOUND: "The position no longer exists",
  ORDER_NOT_FOUND: "The order no longer exists",
  EMAIL_TAKEN: "An account with this email already exists",
  INVALID_CREDENTIALS: "Wrong email or password",
  TOTP_REQUIRED: "Enter the code from your authenticator app",
  TOTP_NOT_ENROLLED: "Set up the authenticator app first",
  TOTP_NOT_ENABLED: "Two-factor authentication is off",
  TOTP_ALREADY_ENABLED: "Two-factor authentication is already on",
  SESSION_NOT_FOUND: "That session has already ended",
  PROVIDER_NOT_FOUND: "That sign-in provider is not available",
  OIDC_STATE_INVALID: "This sign-in has expired or was already used; please start again",
  SIGNIN_TICKET_INVALID: "This sign-in has expired or was already used; please start again",
  OIDC_IDENTITY_INVALID: "The provider's answer could not be verified; please start again",
  PROVIDER_EMAIL_NOT_VERIFIED:
    "An account with this email exists, and the provider has not verified the email: sign in with your password, then link the provider in Security",
  IDENTITY_LINK_REQUIRED:
    "The account with this email uses two-factor authentication: sign in with your password and code, then link the provider in Security",
  PROVIDER_EMAIL_MISSING: "The provider did not share an email address",
  IDENTITY_TAKEN: "That provider account is already linked to a user",
  IDENTITY_NOT_FOUND: "That provider is not linked",
  LAST_SIGNIN_METHOD: "This provider is your only way to sign in; it cannot be unlinked",
  EMAIL_TOKEN_INVALID: "This link is not valid; check that you copied all of it",
  EMAIL_TOKEN_EXPIRED: "This link has expired; ask for a new one",
  EMAIL_TOKEN_USED: "This link was already used; ask for a new one",
  EMAIL_ALREADY_VERIFIED: "Your email address is already confirmed",
  EMAIL_NOT_VERIFIED: "Confirm your email address before trading",
  TOKEN_INVALID: "Your session is not valid; please sign in again",
  TOKEN_EXPIRED: "Your session has expired; please sign in again",
  RATE_LIMITED: "Too many requests; please wait a moment",
  UNKNOWN_MARKET: "This market is not traded",
  INVALID_PRICE: "The price must be a positive multiple of the tick size",
  NO_LIQUIDITY: "There are no orders on the other side of the book",
  WRONG_SHARD: "Your account is served elsewhere; please sign in again",
  POST_ONLY_WOULD_TAKE: "A post-only order may not trade at once; it was not placed",
};

/** Put an API reason (e.g. INSUFFICIENT_BALANCE) into words, falling back to a message. */
export function describeReason(reason: string | null | undefined, fallback: string): string {
  if (reason !== null && reason !== undefined && reason in REASON_TEXT) {
    return REASON_TEXT[reason];
  }
  if (reason !== null && reason !== undefined && reason !== "") {
    const words = reason.toLowerCase().replace(/_/g, " ");
    return `${words.charAt(0).toUpperCase()}${words.slice(1)}`;
  }
  return fallback;
}

/** Describe any thrown value for a user. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    return error.describe();
  }
  if (error instanceof Error) {
    return error.message;
  }
  return "Something went wrong";
}
