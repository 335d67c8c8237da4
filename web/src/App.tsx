import { useCallback, useEffect, useState, useSyncExternalStore } from "react";
import { AuthScreen } from "./components/AuthScreen";
import { EmailLinkScreen } from "./components/EmailLinkScreen";
import { TradingScreen } from "./components/TradingScreen";
import type { ApiClient } from "./lib/api";
import { emailLinkOf } from "./lib/emailLinks";
import type { KeyValueStorage } from "./lib/session";

interface AppProps {
  readonly api: ApiClient;
  readonly storage: KeyValueStorage | null;
}

/**
 * Show the screen of an emailed link the page was opened with, else the sign-in screen or
 * the trading screen, following the session.
 */
export function App({ api, storage }: AppProps) {
  const subscribe = useCallback((listener: () => void) => api.sessions.subscribe(listener), [api]);
  const read = useCallback(() => api.sessions.get(), [api]);
  const session = useSyncExternalStore(subscribe, read, read);
  const [link, setLink] = useState(() => emailLinkOf(window.location.hash));
  useEffect(() => {
    // A link followed while the page is open changes only the fragment: no new load.
    const follow = () => setLink(emailLinkOf(window.location.hash));
    window.addEventListener("hashchange", follow);
    return () => window.removeEventListener("hashchange", follow);
  }, []);
  if (link !== null) {
    const done = () => {
      // The token is spent: take it out of the address bar and the history.
      window.history.replaceState(null, "", window.location.pathname + window.location.search);
      setLink(null);
    };
    return <EmailLinkScreen api={api} link={link} onDone={done} />;
  }
  if (session === null) {
    return <AuthScreen api={api} />;
  }
  return <TradingScreen key={session.user.id} api={api} storage={storage} user={session.user} />;
}
