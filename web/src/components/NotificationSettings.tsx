import { useEffect, useState } from "react";
import type { ApiClient } from "../lib/api";
import {
  getNotificationSettings,
  type NotificationSetting,
  setNotification,
} from "../lib/security";
import { describeError } from "../lib/errors";

const KIND_TEXT: Readonly<Record<string, string>> = {
  NOTIFICATION_KIND_LIQUIDATION: "A position is liquidated",
  NOTIFICATION_KIND_TAKE_PROFIT: "A take profit closes a position",
  NOTIFICATION_KIND_STOP_LOSS: "A stop loss closes a position",
  NOTIFICATION_KIND_TRAILING_STOP: "A trailing stop closes a position",
  NOTIFICATION_KIND_ORDER_FILLED: "A pending order is filled",
  NOTIFICATION_KIND_ORDER_REJECTED: "A pending order is rejected",
  NOTIFICATION_KIND_MARGIN_CALL: "A cross account's margin level falls to the margin call level",
};

/** Switch the email notifications of trading events on or off, kind by kind. */
export function NotificationSettings({ api }: { readonly api: ApiClient }) {
  const [settings, setSettings] = useState<readonly NotificationSetting[]>([]);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let cancelled = false;
    getNotificationSettings(api)
      .then((loaded) => {
        if (!cancelled) {
          setSettings(loaded);
        }
      })
      .catch((failure: unknown) => {
        if (!cancelled) {
          setError(describeError(failure));
        }
      });
    return () => {
      cancelled = true;
    };
  }, [api]);

  const toggle = async (kind: string, enabled: boolean) => {
    const shown = (value: boolean) => (current: readonly NotificationSetting[]) =>
      current.map((setting) => (setting.kind === kind ? { kind, enabled: value } : setting));
    setError(null);
    // The box follows the click at once; the server's answer (or a failure) settles it.
    setSettings(shown(enabled));
    try {
      setSettings(await setNotification(api, kind, enabled));
    } catch (failure) {
      setSettings(shown(!enabled));
      setError(describeError(failure));
    }
  };

  return (
    <section data-testid="security-notifications">
      <h4>Email notifications</h4>
      {error !== null && <p role="alert">{error}</p>}
      <ul>
        {settings.map((setting) => (
          <li key={setting.kind}>
            <label>
              <input
                type="checkbox"
                checked={setting.enabled === true}
                onChange={(event) => void toggle(setting.kind, event.target.checked)}
                data-testid={`notify-${setting.kind}`}
              />{" "}
              {KIND_TEXT[setting.kind] ?? setting.kind}
            </label>
          </li>
        ))}
      </ul>
    </section>
  );
}
