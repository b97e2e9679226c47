// Push notifications through Firebase Cloud Messaging's HTTP v1 API:
//
//   POST {FCM_ENDPOINT}/v1/projects/{FCM_PROJECT_ID}/messages:send
//   Authorization: Bearer {FCM_ACCESS_TOKEN}
//   { "message": { "token": "…", "notification": { "title": "…", "body": "…" } } }
//
// The endpoint is configurable (https://fcm.googleapis.com in production, a local receiver
// in tests). FCM_ACCESS_TOKEN is an OAuth 2 access token that the deployment keeps fresh
// (e.g. a sidecar minting it from the service account); when it is unset no Authorization
// header is sent, for a relay that adds its own.
//
// Outcomes: "sent"; "unregistered" when FCM says the token is dead (HTTP 404, or an
// UNREGISTERED error code), so the caller deactivates that device; any other answer, a
// timeout or a network error throws a PushError (the token may be fine: try again later).
import type { Config } from "../config.js";

export interface PushMessage {
  title: string;
  body: string;
  /** String key/values delivered to the app with the notification. */
  data?: Record<string, string>;
}

export type PushOutcome = "sent" | "unregistered";

export interface PushSender {
  send(token: string, message: PushMessage): Promise<PushOutcome>;
}

/** A failed push. The message is safe to log: a status or error code, never the token. */
export class PushError extends Error {
  override name = "PushError";
}

interface FcmErrorBody {
  error?: { status?: string; details?: Array<{ errorCode?: string }> };
}

function isUnregistered(status: number, body: FcmErrorBody | undefined): boolean {
  if (status === 404) return true;
  return !!body?.error?.details?.some((d) => d.errorCode === "UNREGISTERED");
}

export function createPushSender(fcm: NonNullable<Config["fcm"]>, { timeoutMs = 10_000 }: { timeoutMs?: number } = {}): PushSender {
  const url = `${fcm.endpoint}/v1/projects/${encodeURIComponent(fcm.projectId)}/messages:send`;
  const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json" };
  if (fcm.accessToken) headers.authorization = `Bearer ${fcm.accessToken}`;

  return {
    async send(token, { title, body, data }) {
      let res: Response;
      try {
        res = await fetch(url, {
          method: "POST",
          headers,
          body: JSON.stringify({ message: { token, notification: { title, body }, ...(data ? { data } : {}) } }),
          signal: AbortSignal.timeout(timeoutMs),
          redirect: "error", // never replay the bearer token to another host
        });
      } catch (err) {
        const e = err as { name?: string; cause?: { code?: string } };
        throw new PushError(`push failed: ${e.name === "TimeoutError" ? `timeout after ${timeoutMs} ms` : (e.cause?.code ?? e.name ?? "network error")}`);
      }
      if (res.ok) {
        await res.arrayBuffer().catch(() => undefined);
        return "sent";
      }
      const answer = (await res.json().catch(() => undefined)) as FcmErrorBody | undefined;
      if (isUnregistered(res.status, answer)) return "unregistered";
      throw new PushError(`push failed: HTTP ${res.status}${answer?.error?.status ? ` ${answer.error.status}` : ""}`);
    },
  };
}
