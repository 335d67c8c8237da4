/**
 * An idempotency key per submission, so that a retried request changes nothing twice.
 *
 * Built from `crypto.getRandomValues`, which unlike `crypto.randomUUID` also exists on pages
 * served over plain HTTP from another host than localhost.
 */
export function newClientOrderId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `web-${hex}`;
}
