import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App, takeEmailLink } from "./App";
import { ApiClient } from "./lib/api";
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
const root = document.getElementById("root");
if (root === null) {
  throw new Error("the page has no #root element");
}
createRoot(root).render(
  <StrictMode>
    <App api={api} storage={storage} link={link} />
  </StrictMode>,
);
