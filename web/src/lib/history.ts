/** The first history page: the server's rows plus closes the events channel already told of. */

import type { Position } from "./types";

/** Identify a closed entry; partial closes of one position differ by time and quantity. */
export function closedEntryKey(position: Position): string {
  return `${position.id}|${position.closeTime ?? ""}|${position.quantity}`;
}

function closeMillis(position: Position): number {
  const millis = position.closeTime === undefined ? Number.NaN : Date.parse(position.closeTime);
  return Number.isNaN(millis) ? 0 : millis;
}

/**
 * Merge the server's newest-first page with recently announced closes it may not hold yet
 * (history is recorded asynchronously), newest first, without duplicates.
 */
export function mergeHistory(
  page: readonly Position[],
  announced: readonly Position[],
): readonly Position[] {
  const known = new Set(page.map(closedEntryKey));
  const missing = announced.filter((position) => !known.has(closedEntryKey(position)));
  if (missing.length === 0) {
    return page;
  }
  const unique = new Map<string, Position>();
  for (const position of missing) {
    unique.set(closedEntryKey(position), position);
  }
  return [...unique.values(), ...page].sort((a, b) => closeMillis(b) - closeMillis(a));
}
