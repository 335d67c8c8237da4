import { useCallback, useState, useSyncExternalStore } from "react";
import { AuthScreen } from "./components/AuthScreen";
import {
  LinkNotice,
  ResetPasswordScreen,
  useEmailVerification,
  VerifyEmailBanner,
} from "./components/EmailLinks";
import { TradingScreen } from "./components/TradingScreen";
import type { ApiClient } from "./lib/api";
import type { EmailLink } from "./lib/security";
import type { KeyValueStorage } from "./lib/session";

interface AppProps {
  readonly api: ApiClient;
  readonly storage: KeyValueStorage | null;
  /** The mailed link the page was opened with, if any. */
  readonly link?: EmailLink | null;
}

/** Show the sign-in screen or the trading screen, following the session; act on a mailed link. */
export function App({ api, storage, link = null }: AppProps) {
  const subscribe = useCallback((listener: () => void) => api.sessions.subscribe(listener), [api]);
  const read = useCallback(() => api.sessions.get(), [api]);
  const session = useSyncExternalStore(subscribe, read, read);
  const [resetToken, setResetToken] = useState(link?.kind === "reset-password" ? link.token : null);
  const verification = useEmailVerification(api, link?.kind === "verify-email" ? link.token : null);
  const [notice, setNotice] = useState<{ text: string; failed: boolean } | null>(null);
  const [dismissed, setDismissed] = useState(false);
  const shown = dismissed ? null : (notice ?? verification);
  const banner = shown === null ? null : (
    <LinkNotice text={shown.text} failed={shown.failed} onDismiss={() => setDismissed(true)} />
  );
  if (resetToken !== null) {
    return (
      <ResetPasswordScreen
        api={api}
        token={resetToken}
        onDone={(text) => {
          setResetToken(null);
          setNotice({ text, failed: false });
        }}
      />
    );
  }
  if (session === null) {
    return (
      <>
        {banner}
        <AuthScreen api={api} />
      </>
    );
  }
  // The page verified the address itself: the session's copy of the user is older.
  const user =
    verification !== null && !verification.failed ? { ...session.user, emailVerified: true } : session.user;
  return (
    <>
      {banner}
      <VerifyEmailBanner key={`verify-${user.id}`} api={api} user={user} />
      <TradingScreen key={user.id} api={api} storage={storage} user={user} />
    </>
  );
}
