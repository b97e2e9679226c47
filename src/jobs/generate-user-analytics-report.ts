// generate-user-analytics-report (weekly, and on demand): one analytics_reports row per user
// and period, with the user's usage in [period_start, period_end). Weekly: the last full ISO
// week (Monday 00:00 UTC to Monday 00:00 UTC), on Mondays. On demand:
//
//   npm run job -- generate-user-analytics-report --from 2026-11-01 --to 2026-11-08
//   queue.enqueue("generate-user-analytics-report", { from: "2026-11-01", to: "2026-11-08" })
//
// `from` inclusive, `to` exclusive; dates are UTC midnights (full ISO timestamps work too).
//
// Users reported: those who had joined before the period ended and were active at some point
// of it (active now, or deactivated after it began). A rerun of a period upserts (unique
// user_id, period_start, period_end), so reruns and concurrent runs converge.
//
// Stats (ReportStats) use the notions of GetUsageStats: logins are the audit actions in
// LOGIN_ACTIONS, events every audit row of the user. What the stores keep no history of is
// read as of generation: active_devices, profile_complete and kyc_status.
import { LOGIN_ACTIONS } from "../domain/usage-stats.js";
import { inBatches, select, type JobSpec } from "./context.js";

/** Shape of analytics_reports.stats (snake_case, like the rest of the API). */
export interface ReportStats {
  logins: number;
  events: number;
  /** UTC days with at least one event. */
  active_days: number;
  last_login: string | null;
  last_activity: string | null;
  sessions_started: number;
  /** Sessions live at period_end (created before, not revoked nor expired by then). */
  active_sessions_at_end: number;
  devices_registered: number;
  active_devices: number;
  /** Decimal strings: bigint sums stay exact. */
  points_earned: string;
  points_spent: string;
  profile_complete: boolean;
  kyc_status: string;
}

export interface Period {
  start: Date;
  end: Date;
}

const DAY_MS = 86_400_000;
const MAX_PERIOD_DAYS = 366;

/** The last full ISO week before `now` (UTC). */
export function lastFullWeek(now = new Date()): Period {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const sinceMonday = (new Date(today).getUTCDay() + 6) % 7;
  const end = new Date(today - sinceMonday * DAY_MS);
  return { start: new Date(end.getTime() - 7 * DAY_MS), end };
}

function parseInstant(name: string, value: unknown): Date {
  const text = typeof value === "string" ? value.trim() : "";
  const date = /^\d{4}-\d{2}-\d{2}$/.test(text) ? new Date(`${text}T00:00:00Z`) : new Date(text);
  if (!text || Number.isNaN(date.getTime())) throw new Error(`--${name}: expected a date (YYYY-MM-DD) or an ISO timestamp`);
  return date;
}

/** The period of a run: both `from` and `to`, or neither (the last full week). */
export function periodOf(data: unknown): Period {
  const { from, to } = (data ?? {}) as { from?: unknown; to?: unknown };
  if (from === undefined && to === undefined) return lastFullWeek();
  if (from === undefined || to === undefined) throw new Error("--from and --to go together");
  const period = { start: parseInstant("from", from), end: parseInstant("to", to) };
  if (period.end <= period.start) throw new Error("--to must be after --from");
  if (period.end.getTime() - period.start.getTime() > MAX_PERIOD_DAYS * DAY_MS) throw new Error(`a period spans at most ${MAX_PERIOD_DAYS} days`);
  return period;
}

const USERS_BATCH = `
SELECT id FROM users
WHERE id > $1 AND date_joined < $3 AND (is_active OR deactivated_at >= $2)
ORDER BY id
LIMIT $4`;

// One statement per batch: per-user aggregates, each through a (user_id, …) index, upserted.
const REPORT_BATCH = `
WITH reported AS (
  INSERT INTO analytics_reports (user_id, period_start, period_end, stats, generated_at)
  SELECT x.id, $2::timestamptz, $3::timestamptz, jsonb_build_object(
    'logins', a.logins,
    'events', a.events,
    'active_days', a.active_days,
    'last_login', a.last_login,
    'last_activity', a.last_event,
    'sessions_started', s.started,
    'active_sessions_at_end', s.live_at_end,
    'devices_registered', d.registered,
    'active_devices', d.active,
    'points_earned', t.earned,
    'points_spent', t.spent,
    'profile_complete', COALESCE(p.is_profile_complete, false),
    'kyc_status', COALESCE(k.status, 'NOT_SUBMITTED')
  ), now()
  FROM unnest($1::uuid[]) AS x(id)
  CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE action = ANY($4::text[]))::int AS logins,
           count(*)::int AS events,
           count(DISTINCT (created_at AT TIME ZONE 'UTC')::date)::int AS active_days,
           max(created_at) FILTER (WHERE action = ANY($4)) AS last_login,
           max(created_at) AS last_event
    FROM user_audit_logs WHERE user_id = x.id AND created_at >= $2 AND created_at < $3
  ) a
  CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE created_at >= $2)::int AS started,
           count(*) FILTER (WHERE expires_at > $3 AND (revoked_at IS NULL OR revoked_at > $3))::int AS live_at_end
    FROM sessions WHERE user_id = x.id AND created_at < $3
  ) s
  CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE created_at >= $2)::int AS registered,
           count(*) FILTER (WHERE is_active)::int AS active
    FROM user_devices WHERE user_id = x.id AND created_at < $3
  ) d
  CROSS JOIN LATERAL (
    SELECT COALESCE(sum(delta) FILTER (WHERE delta > 0), 0)::text AS earned,
           COALESCE(-sum(delta) FILTER (WHERE delta < 0), 0)::text AS spent
    FROM points_transactions WHERE user_id = x.id AND created_at >= $2 AND created_at < $3
  ) t
  LEFT JOIN user_profiles p ON p.user_id = x.id
  LEFT JOIN user_kyc k ON k.user_id = x.id
  ON CONFLICT (user_id, period_start, period_end) DO UPDATE SET stats = EXCLUDED.stats, generated_at = EXCLUDED.generated_at
  RETURNING 1
) SELECT count(*)::int AS reports FROM reported`;

export const generateUserAnalyticsReport: JobSpec = {
  name: "generate-user-analytics-report",
  every: "30 2 * * 1",
  cliOptions: { from: { type: "string" }, to: { type: "string" } },
  async run(ctx, data) {
    const { start, end } = periodOf(data);
    let after = "00000000-0000-0000-0000-000000000000";
    const run = await inBatches(ctx, async (size) => {
      const users = await select<{ id: string }>(ctx, USERS_BATCH, [after, start, end, size]);
      if (!users.length) return 0;
      after = users[users.length - 1]!.id;
      await select(ctx, REPORT_BATCH, [users.map((u) => u.id), start, end, [...LOGIN_ACTIONS]]);
      return users.length;
    });
    return { periodStart: start.toISOString(), periodEnd: end.toISOString(), reports: run.items, batches: run.batches, complete: run.complete };
  },
};
