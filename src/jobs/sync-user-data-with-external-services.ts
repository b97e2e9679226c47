// sync-user-data-with-external-services (every 30 s, and right after a change commits — see
// outbox-listener.ts): tells every WEBHOOK_URLS endpoint about changed users.
//
// 1. Fan-out. Outbox rows are claimed (FOR UPDATE SKIP LOCKED) and deleted in batches; each
//    changed user becomes one pending delivery per endpoint, in the same statement. A user
//    who already has a pending delivery to an endpoint gets no second one: the change is
//    folded into it (change_seq + 1, reasons merged), since what is sent is the user's
//    snapshot at send time, not the change.
// 2. Delivery. Due deliveries are leased (locked_until, attempts + 1) in batches with SKIP
//    LOCKED, the users' snapshots read, and each POSTed, signed (webhook.ts). Success deletes
//    the delivery — unless a change was folded in while the request was in flight
//    (change_seq moved), in which case it stays pending, due at once. Failure schedules the
//    next attempt after WEBHOOK_BACKOFF_SECONDS × 2^(attempts − 1) (capped at 6 h, +0–10 %
//    jitter); after WEBHOOK_MAX_ATTEMPTS it is dead-lettered (status 'dead', last_error
//    kept), listed by `npm run jobs:status`, and requeued with
//    `npm run job -- sync-user-data-with-external-services --retry-dead`.
//
// Deliveries are per endpoint, so a failing endpoint never causes a resend to the others.
// Deliveries to endpoints no longer configured are left alone (visible in jobs:status).
// Without any WEBHOOK_URLS the outbox is still drained (nothing is owed to anyone).
//
// The snapshot: the user, the profile and the KYC status — no document numbers or images,
// no tokens or session data. A user deleted meanwhile is sent as `"user": null`.
import type { UserRow } from "../domain/users.js";
import { inBatches, select, type JobContext, type JobSpec } from "./context.js";
import { postWebhook, WebhookError } from "./webhook.js";

const LEASE_SECONDS = 60;
const MAX_BACKOFF_SECONDS = 6 * 3600;
const PARALLEL_REQUESTS = 8;

const FAN_OUT = `
WITH claimed AS (
  DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
  ) RETURNING user_id, reason
), changes AS (
  SELECT user_id, array_agg(DISTINCT reason) AS reasons FROM claimed GROUP BY user_id
), owed AS (
  INSERT INTO webhook_deliveries (user_id, endpoint, reasons)
  SELECT c.user_id, e.endpoint, c.reasons FROM changes c CROSS JOIN unnest($2::text[]) AS e(endpoint)
  ON CONFLICT (user_id, endpoint) WHERE status = 'pending' DO UPDATE
    SET change_seq = webhook_deliveries.change_seq + 1,
        reasons = ARRAY(SELECT DISTINCT r FROM unnest(webhook_deliveries.reasons || EXCLUDED.reasons) AS r ORDER BY r),
        updated_at = now()
  RETURNING 1
) SELECT (SELECT count(*) FROM claimed)::int AS claimed, (SELECT count(*) FROM owed)::int AS owed`;

const CLAIM_DUE = `
UPDATE webhook_deliveries d
SET locked_until = now() + make_interval(secs => $3), attempts = d.attempts + 1, last_attempt_at = now(), updated_at = now()
WHERE d.id IN (
  SELECT id FROM webhook_deliveries
  WHERE status = 'pending' AND next_attempt_at <= now() AND (locked_until IS NULL OR locked_until <= now()) AND endpoint = ANY($1::text[])
  ORDER BY next_attempt_at, id
  LIMIT $2
  FOR UPDATE SKIP LOCKED
)
RETURNING d.id, d.user_id, d.endpoint, d.attempts, d.change_seq, d.reasons`;

const SNAPSHOTS = `
SELECT x.id AS requested_id,
       u.id, u.username, u.email, u.phone_number, u.is_active, u.is_staff, u.date_joined, u.last_login, u.last_activity_at, u.deactivated_at,
       p.full_name, p.date_of_birth::text AS date_of_birth, p.address, p.avatar_url, COALESCE(p.is_profile_complete, false) AS is_profile_complete,
       COALESCE(k.status, 'NOT_SUBMITTED') AS kyc_status, k.submitted_at AS kyc_submitted_at, k.verified_at AS kyc_verified_at
FROM unnest($1::uuid[]) AS x(id)
LEFT JOIN users u ON u.id = x.id
LEFT JOIN user_profiles p ON p.user_id = u.id
LEFT JOIN user_kyc k ON k.user_id = u.id`;

// Deleted when no change was folded in meanwhile; otherwise due again at once, with a fresh budget.
const DELIVERED = `
WITH gone AS (DELETE FROM webhook_deliveries WHERE id = $1 AND change_seq = $2 RETURNING id)
UPDATE webhook_deliveries SET attempts = 0, locked_until = NULL, next_attempt_at = now(), last_error = NULL, updated_at = now()
WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM gone)
RETURNING id`;

const FAILED = `
UPDATE webhook_deliveries
SET status = CASE WHEN attempts >= $2 THEN 'dead' ELSE 'pending' END,
    next_attempt_at = now() + make_interval(secs => $3),
    locked_until = NULL, last_error = $4, updated_at = now()
WHERE id = $1
RETURNING status`;

// The newest dead letter of each (user, endpoint) goes back to pending unless a pending one
// exists (it will send the current snapshot anyway); the older ones are dropped.
const RETRY_DEAD = `
WITH latest AS (
  SELECT DISTINCT ON (user_id, endpoint) id FROM webhook_deliveries d
  WHERE status = 'dead' AND endpoint = ANY($1::text[])
    AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.status = 'pending' AND p.user_id = d.user_id AND p.endpoint = d.endpoint)
  ORDER BY user_id, endpoint, id DESC
), revived AS (
  UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), locked_until = NULL, last_error = NULL, updated_at = now()
  WHERE id IN (SELECT id FROM latest) RETURNING 1
), dropped AS (
  DELETE FROM webhook_deliveries WHERE status = 'dead' AND endpoint = ANY($1::text[]) AND id NOT IN (SELECT id FROM latest) RETURNING 1
) SELECT (SELECT count(*) FROM revived)::int AS revived, (SELECT count(*) FROM dropped)::int AS dropped`;

interface Due {
  id: string;
  user_id: string;
  endpoint: string;
  attempts: number;
  change_seq: number;
  reasons: string[];
}

/** A user's columns (null id: the user is gone) and what the snapshot adds to them. */
interface SnapshotRow extends Omit<UserRow, "id"> {
  requested_id: string;
  id: string | null;
  last_activity_at: Date | null;
  deactivated_at: Date | null;
  full_name: string | null;
  date_of_birth: string | null;
  address: string | null;
  avatar_url: string | null;
  is_profile_complete: boolean;
  kyc_status: string;
  kyc_submitted_at: Date | null;
  kyc_verified_at: Date | null;
}

/** The user as receivers see it (snake_case, like the API). */
function snapshot(r: SnapshotRow) {
  if (!r.id) return null;
  return {
    id: r.id,
    username: r.username,
    email: r.email,
    phone_number: r.phone_number,
    is_active: r.is_active,
    is_staff: r.is_staff,
    date_joined: r.date_joined,
    last_login: r.last_login,
    last_activity_at: r.last_activity_at,
    deactivated_at: r.deactivated_at,
    profile: { full_name: r.full_name, date_of_birth: r.date_of_birth, address: r.address, avatar_url: r.avatar_url, is_profile_complete: r.is_profile_complete },
    kyc: { status: r.kyc_status, submitted_at: r.kyc_submitted_at, verified_at: r.kyc_verified_at },
  };
}

/** Seconds until the next attempt after `attempts` failures. */
export function backoffSeconds(baseSeconds: number, attempts: number): number {
  const plain = Math.min(baseSeconds * 2 ** Math.max(0, attempts - 1), MAX_BACKOFF_SECONDS);
  return Math.round(plain * (1 + Math.random() * 0.1));
}

/** Runs `fn` over `items`, at most `limit` at a time. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

interface Tally {
  delivered: number;
  failed: number;
  deadLettered: number;
}

async function deliverBatch(ctx: JobContext, endpoints: string[], size: number, tally: Tally): Promise<number> {
  const { config } = ctx;
  const due = await select<Due>(ctx, CLAIM_DUE, [endpoints, size, LEASE_SECONDS]);
  if (!due.length) return 0;
  const rows = await select<SnapshotRow>(ctx, SNAPSHOTS, [[...new Set(due.map((d) => d.user_id))]]);
  const users = new Map(rows.map((r) => [r.requested_id, snapshot(r)]));
  await eachLimited(due, PARALLEL_REQUESTS, async (d) => {
    const eventId = `${d.id}.${d.change_seq}`;
    const body = JSON.stringify({ id: eventId, type: "user.changed", occurred_at: new Date().toISOString(), user_id: d.user_id, reasons: d.reasons, user: users.get(d.user_id) ?? null });
    try {
      await postWebhook(d.endpoint, config.webhookSecret!, eventId, body);
    } catch (err) {
      const reason = err instanceof WebhookError ? err.message : String(err);
      const [row] = await select<{ status: string }>(ctx, FAILED, [d.id, config.webhookMaxAttempts, backoffSeconds(config.webhookBackoffSeconds, d.attempts), reason]);
      if (row?.status === "dead") {
        tally.deadLettered += 1;
        ctx.logger.warn({ deliveryId: d.id, endpoint: d.endpoint, attempts: d.attempts, reason }, "webhook delivery dead-lettered");
      } else {
        tally.failed += 1;
      }
      return;
    }
    await select(ctx, DELIVERED, [d.id, d.change_seq]);
    tally.delivered += 1;
  });
  return due.length;
}

export const syncUserDataWithExternalServices: JobSpec = {
  name: "sync-user-data-with-external-services",
  every: "30 seconds",
  cliOptions: { "retry-dead": { type: "boolean" } },
  async run(ctx, data) {
    const endpoints = [...new Set(ctx.config.webhookUrls)];
    let requeued = { revived: 0, dropped: 0 };
    if ((data as { "retry-dead"?: boolean } | undefined)?.["retry-dead"]) [requeued] = await select<typeof requeued>(ctx, RETRY_DEAD, [endpoints]);
    let owed = 0;
    const fanOut = await inBatches(ctx, async (size) => {
      const [row] = await select<{ claimed: number; owed: number }>(ctx, FAN_OUT, [size, endpoints]);
      owed += row!.owed;
      return row!.claimed;
    });
    const tally: Tally = { delivered: 0, failed: 0, deadLettered: 0 };
    const delivery = endpoints.length ? await inBatches(ctx, (size) => deliverBatch(ctx, endpoints, size, tally)) : { complete: true };
    return { changes: fanOut.items, deliveriesQueued: owed, ...tally, ...requeued, complete: fanOut.complete && delivery.complete };
  },
};
