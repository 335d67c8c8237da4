import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App, takeEmailLink } from "./App";
import { ApiClient } from "./lib/api";
import { describeError } from "./lib/errors";
import {
  type FlowResult,
  type SigninChallenge,
  completeFlow,
  currentReturnUrl,
  followReturnUrl,
  tabStorage,
} from "./lib/providers";
import { SessionStore } from "./lib/session";
import "./styles.css";

function browserStorage(): Storage | null {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

const storage = browserStorage();
// A mailed link carries its token in the fragment: read it once, then drop it from the address
// bar so that neither a reload nor the history replays it.
const link = takeEmailLink();
const api = new ApiClient("", (input, init) => fetch(input, init), new SessionStore(storage));
/**
 * Complete a sign-in or link the page was sent back to by an identity provider, take `code`
 * and `state` out of the address, and return what to tell the user, if anything, and the
 * second-factor challenge of a sign-in that asks for the code.
 */
async function finishProviderFlow(): Promise<{
  notice: string | null;
  challenge: SigninChallenge | null;
}> {
  const flows = tabStorage();
  if (flows === null) {
    return { notice: null, challenge: null };
  }
  let result: FlowResult | null;
  try {
    result = await completeFlow(api, flows, window.location.search);
  } catch (error) {
    result = { returnUrl: currentReturnUrl(window.location), message: describeError(error) };
  }
  if (result === null) {
    return { notice: null, challenge: null };
  }
  if (result.challenge !== undefined) {
    // The page stays here, without the code and state, until the code is given.
    followReturnUrl(currentReturnUrl(window.location));
    return { notice: null, challenge: result.challenge };
  }
  followReturnUrl(result.returnUrl);
  return { notice: result.message, challenge: null };
}

const root = document.getElementById("root");
if (root === null) {
  throw new Error("the page has no #root element");
}
const mount = root;
void finishProviderFlow().then(({ notice, challenge }) => {
  createRoot(mount).render(
    <StrictMode>
      <App api={api} storage={storage} link={link} notice={notice} challenge={challenge} />
    </StrictMode>,
  );
});
