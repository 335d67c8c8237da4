import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
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
const api = new ApiClient("", (input, init) => fetch(input, init), new SessionStore(storage));
const root = document.getElementById("root");
if (root === null) {
  throw new Error("the page has no #root element");
}
createRoot(root).render(
  <StrictMode>
    <App api={api} storage={storage} />
  </StrictMode>,
);
