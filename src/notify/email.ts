// E-mail through an SMTP server (SMTP_URL, EMAIL_FROM), with a small connection pool.
// Options in the URL's query (e.g. "?requireTLS=true") override the defaults below.
import { createTransport } from "nodemailer";
import { otpEmail } from "./templates.js";
import { DeliveryError, type Notifier } from "./types.js";

export interface EmailOptions {
  smtpUrl: string;
  from: string;
  /** Connect, greeting and idle-socket timeouts, in ms. */
  timeoutMs?: number;
}

export function createEmailNotifier({ smtpUrl, from, timeoutMs = 10_000 }: EmailOptions): Notifier {
  const transport = createTransport({
    url: smtpUrl,
    pool: true,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    // Messages are built from our own text only: never let a field pull in files or URLs.
    disableFileAccess: true,
    disableUrlAccess: true,
    logger: false,
  });

  async function send(to: string, subject: string, text: string): Promise<void> {
    try {
      await transport.sendMail({ from, to, subject, text });
    } catch (err) {
      // SMTP errors quote the server's reply, which often names the recipient: keep codes only.
      const e = err as { code?: string; responseCode?: number };
      throw new DeliveryError("email", [e.code ?? "error", e.responseCode].filter(Boolean).join(" "));
    }
  }

  return {
    async sendOtp({ to, code, purpose, ttlSeconds }) {
      const { subject, text } = otpEmail(code, purpose, ttlSeconds);
      await send(to, subject, text);
    },
    async sendMessage({ to, subject, text }) {
      await send(to, subject ?? "", text);
    },
    async close() {
      transport.close();
    },
  };
}
