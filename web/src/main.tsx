import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App, takeEmailLink } from "./App";
import { ApiClient } from "./lib/api";
import { describeError } from "./lib/errors";
import { type FlowResult, completeFlow, currentReturnUrl, tabStorage } from "./lib/providers";
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
 * and `state` out of the address, and return what to tell the user, if anything.
 */
async function finishProviderFlow(): Promise<string | null> {
  const flows = tabStorage();
  if (flows === null) {
    return null;
  }
  let result: FlowResult | null;
  try {
    result = await completeFlow(api, flows, window.location.search);
  } catch (error) {
    result = { returnUrl: currentReturnUrl(window.location), message: describeError(error) };
  }
  if (result === null) {
    return null;
  }
  const target = new URL(result.returnUrl, window.location.href);
  if (target.origin !== window.location.origin) {
    window.location.assign(target.href);
    return null;
  }
  window.history.replaceState(null, "", `${target.pathname}${target.search}${target.hash}`);
  return result.message;
}

const root = document.getElementById("root");
if (root === null) {
  throw new Error("the page has no #root element");
}
const mount = root;
void finishProviderFlow().then((notice) => {
  createRoot(mount).render(
    <StrictMode>
      <App api={api} storage={storage} link={link} notice={notice} />
    </StrictMode>,
  );
});
