import { useCallback, useEffect, useState, useSyncExternalStore } from "react";
import { AuthScreen } from "./components/AuthScreen";
import {
  LinkNotice,
  type Notice,
  ResetPasswordScreen,
  useEmailVerification,
  VerifyEmailBanner,
} from "./components/EmailLinks";
import { TradingScreen } from "./components/TradingScreen";
import type { ApiClient } from "./lib/api";
import type { SigninChallenge } from "./lib/providers";
import { type EmailLink, emailLinkOf } from "./lib/security";
import type { KeyValueStorage } from "./lib/session";

interface AppProps {
  readonly api: ApiClient;
  readonly storage: KeyValueStorage | null;
  /** The mailed link the page was opened with, if any. */
  readonly link?: EmailLink | null;
  /** What the page says on opening (how a sign-in through a provider ended), if anything. */
  readonly notice?: string | null;
  /** A provider sign-in the page came back to that waits for the second factor, if any. */
  readonly challenge?: SigninChallenge | null;
}

/** Read a mailed link from the address bar, and take it out of there (and of the history). */
export function takeEmailLink(): EmailLink | null {
  const link = emailLinkOf(window.location.hash);
  if (link !== null) {
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  return link;
}

/** Show the sign-in screen or the trading screen, following the session; act on mailed links. */
export function App({
  api,
  storage,
  link: opened = null,
  notice: opening = null,
  challenge = null,
}: AppProps) {
  const subscribe = useCallback((listener: () => void) => api.sessions.subscribe(listener), [api]);
  const read = useCallback(() => api.sessions.get(), [api]);
  const session = useSyncExternalStore(subscribe, read, read);
  const [link, setLink] = useState<EmailLink | null>(opened);
  const [notice, setNotice] = useState<Notice | null>(null);
  const [dismissed, setDismissed] = useState<Notice | null>(null);
  useEffect(() => {
    // A link opened in a tab that already shows the page changes only the fragment.
    const follow = () => {
      const next = takeEmailLink();
      if (next === null) return;
      setNotice(null);
      setLink(next);
    };
    window.addEventListener("hashchange", follow);
    return () => window.removeEventListener("hashchange", follow);
  }, []);
  const verification = useEmailVerification(api, link?.kind === "verify-email" ? link : null);
  const shown = notice ?? verification;
  const banner =
    shown === null || shown === dismissed ? null : (
      <LinkNotice text={shown.text} failed={shown.failed} onDismiss={() => setDismissed(shown)} />
    );
  if (link?.kind === "reset-password") {
    return (
      <ResetPasswordScreen
        key={link.token}
        api={api}
        token={link.token}
        onDone={(text) => {
          setLink(null);
          setNotice({ text, failed: false });
        }}
      />
    );
  }
  if (session === null) {
    return (
      <>
        {banner}
        <AuthScreen api={api} notice={opening} challenge={challenge} />
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
