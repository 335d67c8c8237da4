/**
 * Sign-in and linking through identity providers (Google, GitHub, OpenID Connect).
 *
 * Starting a flow asks the API for the provider's authorization URL and remembers, for this
 * browser tab, the `state` in that URL and whether it is a sign-in or a link. The provider
 * sends the browser back to the page with `code` and `state`; the page completes the flow
 * only when that state is the one it remembered, so a link crafted elsewhere does nothing.
 */

import type { ApiClient } from "./api";
import { ApiError } from "./errors";
import type { KeyValueStorage } from "./session";

/** A provider users can sign in with. */
export interface IdentityProvider {
  readonly name: string;
  readonly displayName?: string;
}

/** A provider identity linked to the user. */
export interface LinkedIdentity {
  readonly provider: string;
  readonly email?: string;
  readonly linkTime?: string;
}

type FlowKind = "signin" | "link";

interface PendingFlow {
  readonly state: string;
  readonly kind: FlowKind;
}

const PENDING_KEY = "cfd.oidc.pending";

/**
 * A provider sign-in waiting for the user's second factor: the server answered TOTP_REQUIRED,
 * as a password sign-in without a code does, with a single-use ticket for
 * `ApiClient.verifyProviderSignin`.
 */
export interface SigninChallenge {
  readonly signinTicket: string;
}

/**
 * Where the browser goes after a flow that came back, and what it says, if anything; with a
 * `challenge`, the page asks for the code first (and stays where it is until then).
 */
export interface FlowResult {
  readonly returnUrl: string;
  readonly message: string | null;
  readonly challenge?: SigninChallenge;
}

/** Return the challenge of a provider sign-in's TOTP_REQUIRED answer, if that is what it is. */
export function challengeOf(error: unknown): SigninChallenge | null {
  if (error instanceof ApiError && error.reason === "TOTP_REQUIRED") {
    const signinTicket = error.metadata.signinTicket;
    if (typeof signinTicket === "string" && signinTicket !== "") {
      return { signinTicket };
    }
  }
  return null;
}

export async function listProviders(api: ApiClient): Promise<IdentityProvider[]> {
  const response = await api.request<{ providers?: IdentityProvider[] }>(
    "GET",
    "/v1/auth/providers",
    { auth: false },
  );
  return response.providers ?? [];
}

export async function listIdentities(api: ApiClient): Promise<LinkedIdentity[]> {
  const response = await api.request<{ identities?: LinkedIdentity[] }>(
    "GET",
    "/v1/users/me/identities",
  );
  return response.identities ?? [];
}

export async function unlinkIdentity(api: ApiClient, provider: string): Promise<void> {
  await api.request("POST", `/v1/users/me/identities/${encodeURIComponent(provider)}:unlink`, {
    body: {},
  });
}

function remember(storage: KeyValueStorage, url: string, kind: FlowKind): string {
  const state = new URL(url).searchParams.get("state");
  if (state === null || state === "") {
    throw new Error("the provider's URL has no state");
  }
  storage.setItem(PENDING_KEY, JSON.stringify({ state, kind } satisfies PendingFlow));
  return url;
}

/** Start signing in with `provider`; return the URL to send the browser to. */
export async function startProviderSignin(
  api: ApiClient,
  storage: KeyValueStorage,
  provider: string,
  returnUrl: string,
): Promise<string> {
  const response = await api.request<{ authorizationUrl: string }>(
    "POST",
    `/v1/auth/providers/${encodeURIComponent(provider)}:start`,
    { body: { returnUrl }, auth: false },
  );
  return remember(storage, response.authorizationUrl, "signin");
}

/** Start linking `provider` to the signed-in user; return the URL to send the browser to. */
export async function startIdentityLink(
  api: ApiClient,
  storage: KeyValueStorage,
  provider: string,
  returnUrl: string,
): Promise<string> {
  const response = await api.request<{ authorizationUrl: string }>(
    "POST",
    `/v1/users/me/identities/${encodeURIComponent(provider)}:link`,
    { body: { returnUrl } },
  );
  return remember(storage, response.authorizationUrl, "link");
}

function takePending(storage: KeyValueStorage): PendingFlow | null {
  const raw = storage.getItem(PENDING_KEY);
  storage.removeItem(PENDING_KEY);
  if (raw === null) {
    return null;
  }
  try {
    const value = JSON.parse(raw) as Partial<PendingFlow>;
    if (typeof value.state === "string" && (value.kind === "signin" || value.kind === "link")) {
      return { state: value.state, kind: value.kind };
    }
  } catch {
    // A damaged entry is no flow in progress.
  }
  return null;
}

/**
 * Complete the flow whose answer is in `search` (the page's query string), if any.
 *
 * Return null when the page was not opened by a provider. Errors of the API are thrown.
 */
export async function completeFlow(
  api: ApiClient,
  storage: KeyValueStorage,
  search: string,
): Promise<FlowResult | null> {
  const params = new URLSearchParams(search);
  const state = params.get("state");
  const code = params.get("code");
  const error = params.get("error");
  if (state === null || (code === null && error === null)) {
    return null;
  }
  const pending = takePending(storage);
  if (pending === null || pending.state !== state) {
    return { returnUrl: "/", message: "This sign-in was not started in this browser tab." };
  }
  if (code === null) {
    return { returnUrl: "/", message: "The provider did not sign you in." };
  }
  if (pending.kind === "signin") {
    try {
      return { returnUrl: await api.completeProviderSignin(code, state), message: null };
    } catch (error) {
      const challenge = challengeOf(error);
      if (challenge === null) {
        throw error;
      }
      return { returnUrl: "", message: null, challenge };
    }
  }
  const response = await api.request<{ identity?: LinkedIdentity; returnUrl?: string }>(
    "POST",
    "/v1/users/me/identities:complete",
    { body: { code, state } },
  );
  const linked = response.identity?.provider ?? "the provider";
  return { returnUrl: response.returnUrl ?? "/", message: `Linked ${linked}.` };
}

/** Return the path and hash of the current page, the return URL of a flow started here. */
export function currentReturnUrl(location: { pathname: string; hash: string }): string {
  return `${location.pathname}${location.hash}`;
}

/**
 * Show `returnUrl` in the address bar: a URL of this page's origin replaces the current entry
 * (dropping `code` and `state` from the address); another allowed origin is navigated to.
 */
export function followReturnUrl(returnUrl: string): void {
  const target = new URL(returnUrl, window.location.href);
  if (target.origin !== window.location.origin) {
    window.location.assign(target.href);
    return;
  }
  window.history.replaceState(null, "", `${target.pathname}${target.search}${target.hash}`);
}

/** Return this tab's session storage, where a flow in progress is remembered, if usable. */
export function tabStorage(): KeyValueStorage | null {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}
