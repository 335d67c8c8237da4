import { useState } from "react";
import type { ApiClient } from "../lib/api";
import { resendVerification } from "../lib/emailLinks";
import { describeError } from "../lib/errors";

interface VerifyEmailBannerProps {
  readonly api: ApiClient;
  readonly email: string;
}

/** Ask the user to confirm their email address, with a way to get a new link. */
export function VerifyEmailBanner({ api, email }: VerifyEmailBannerProps) {
  const [note, setNote] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const resend = async () => {
    setBusy(true);
    try {
      await resendVerification(api);
      setNote(`A new link is on its way to ${email}.`);
    } catch (error) {
      setNote(describeError(error));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="banner" role="status" data-testid="verify-email-banner">
      Confirm your email address with the link we sent to {email}.{" "}
      {note === null ? (
        <button type="button" className="link" disabled={busy} onClick={() => void resend()}>
          Send a new link
        </button>
      ) : (
        <span data-testid="verify-email-note">{note}</span>
      )}
    </div>
  );
}
