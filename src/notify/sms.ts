// SMS through an HTTP provider speaking the common Messages API:
// POST {SMS_API_URL}/2010-04-01/Accounts/{sid}/Messages.json, form fields To, From, Body,
// HTTP basic auth sid:token. Any non-2xx answer, a timeout or a network error is a failure.
import { otpSms } from "./templates.js";
import { DeliveryError, type Notifier } from "./types.js";

export interface SmsOptions {
  apiUrl: string;
  accountSid: string;
  authToken: string;
  from: string;
  timeoutMs?: number;
}

export function createSmsNotifier({ apiUrl, accountSid, authToken, from, timeoutMs = 10_000 }: SmsOptions): Notifier {
  const endpoint = `${apiUrl.replace(/\/+$/, "")}/2010-04-01/Accounts/${encodeURIComponent(accountSid)}/Messages.json`;
  const authorization = `Basic ${Buffer.from(`${accountSid}:${authToken}`).toString("base64")}`;

  async function send(to: string, body: string): Promise<void> {
    let res: Response;
    try {
      res = await fetch(endpoint, {
        method: "POST",
        headers: { authorization, "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
        body: new URLSearchParams({ To: to, From: from, Body: body }),
        signal: AbortSignal.timeout(timeoutMs),
        redirect: "error", // never replay the credentials and the message to another host
      });
    } catch (err) {
      const e = err as { name?: string; cause?: { code?: string } };
      throw new DeliveryError("sms", e.name === "TimeoutError" ? `timeout after ${timeoutMs} ms` : (e.cause?.code ?? e.name ?? "network error"));
    }
    // The body is not logged (providers echo the recipient and the text); read it to free the socket.
    await res.arrayBuffer().catch(() => undefined);
    if (!res.ok) throw new DeliveryError("sms", `HTTP ${res.status}`);
  }

  return {
    async sendOtp({ to, code, purpose, ttlSeconds }) {
      await send(to, otpSms(code, purpose, ttlSeconds));
    },
    async sendMessage({ to, text }) {
      await send(to, text);
    },
    async close() {},
  };
}
