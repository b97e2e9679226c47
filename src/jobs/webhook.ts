// Signed webhook requests (README.jobs.md, "Verifying a webhook").
//
//   POST <endpoint>
//   Content-Type: application/json
//   X-Identity-Delivery: <delivery id>.<change seq>   (stable across retries of one snapshot)
//   X-Identity-Timestamp: <unix seconds>
//   X-Identity-Signature: v1=<hex HMAC-SHA256(WEBHOOK_SECRET, "<timestamp>.<raw body>")>
//
// A receiver recomputes the HMAC over the raw body bytes exactly as received, compares it in
// constant time, and refuses timestamps more than a few minutes away from its clock (replays).
// verifyWebhookSignature below is that check.
import { createHmac, timingSafeEqual } from "node:crypto";

export const DELIVERY_HEADER = "x-identity-delivery";
export const TIMESTAMP_HEADER = "x-identity-timestamp";
export const SIGNATURE_HEADER = "x-identity-signature";
const TIMEOUT_MS = 10_000;

export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `v1=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

/** The receiver's check: a v1 signature of this body and timestamp, and a timestamp within `toleranceSeconds`. */
export function verifyWebhookSignature(
  secret: string,
  { timestamp, signature, body, toleranceSeconds = 300, now = Date.now() }: { timestamp: string; signature: string; body: string; toleranceSeconds?: number; now?: number },
): boolean {
  if (!/^\d+$/.test(timestamp) || Math.abs(now / 1000 - Number(timestamp)) > toleranceSeconds) return false;
  const expected = Buffer.from(signWebhook(secret, timestamp, body));
  const given = Buffer.from(signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** A refused or failed delivery; the message (a status or error code) is what staff see as last_error. */
export class WebhookError extends Error {
  override name = "WebhookError";
}

/** POSTs a signed body; resolves on any 2xx answer. Redirects are failures: the signature is for this URL's owner. */
export async function postWebhook(endpoint: string, secret: string, deliveryId: string, body: string): Promise<void> {
  const timestamp = String(Math.floor(Date.now() / 1000));
  let res: Response;
  try {
    res = await fetch(endpoint, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        [DELIVERY_HEADER]: deliveryId,
        [TIMESTAMP_HEADER]: timestamp,
        [SIGNATURE_HEADER]: signWebhook(secret, timestamp, body),
      },
      body,
      signal: AbortSignal.timeout(TIMEOUT_MS),
      redirect: "error",
    });
  } catch (err) {
    const e = err as { name?: string; cause?: { code?: string } };
    throw new WebhookError(e.name === "TimeoutError" ? `timeout after ${TIMEOUT_MS} ms` : (e.cause?.code ?? e.name ?? "network error"));
  }
  // Receivers' answers are not kept (they may echo data); reading frees the socket.
  await res.arrayBuffer().catch(() => undefined);
  if (!res.ok) throw new WebhookError(`HTTP ${res.status}`);
}
