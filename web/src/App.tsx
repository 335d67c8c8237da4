import { useCallback, useSyncExternalStore } from "react";
import { AuthScreen } from "./components/AuthScreen";
import { TradingScreen } from "./components/TradingScreen";
import type { ApiClient } from "./lib/api";
import type { KeyValueStorage } from "./lib/session";

interface AppProps {
  readonly api: ApiClient;
  readonly storage: KeyValueStorage | null;
  /** What the page says on opening (how a sign-in through a provider ended), if anything. */
  readonly notice?: string | null;
}

/** Show the sign-in screen or the trading screen, following the session. */
export function App({ api, storage, notice = null }: AppProps) {
  const subscribe = useCallback((listener: () => void) => api.sessions.subscribe(listener), [api]);
  const read = useCallback(() => api.sessions.get(), [api]);
  const session = useSyncExternalStore(subscribe, read, read);
  if (session === null) {
    return <AuthScreen api={api} notice={notice} />;
  }
  return <TradingScreen key={session.user.id} api={api} storage={storage} user={session.user} />;
}
