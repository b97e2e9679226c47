// Usage statistics (DESIGN §2, GetUsageStats), computed from the stores on every call rather
// than kept in counters that could drift: the audit trail (logins, activity), sessions,
// devices, the points ledger, the profile and the KYC record. Three queries (the user, one of
// aggregates, the daily series) read one snapshot (REPEATABLE READ), so the totals and the
// series agree with each other.
import { QueryTypes, Transaction, type Sequelize } from "sequelize";
import type { KycStatusValue, Models } from "../store/models/index.js";
import { runTransaction } from "../store/transaction.js";
import { callerUserId, type Caller } from "./caller.js";
import { notFound } from "./errors.js";
import { profileCompleteness } from "./profiles.js";

/** Audit actions that count as a login (the auth flow writes them on Register and Login). */
export const LOGIN_ACTIONS = ["user.login", "user.registered"] as const;

/** Days in the activity series, today (UTC) included. */
export const ACTIVITY_DAYS = 30;

export interface DailyActivity {
  /** UTC day, YYYY-MM-DD. */
  date: string;
  logins: number;
  /** Every audited event of the user that day, logins included. */
  events: number;
}

export interface UsageStats {
  totalLogins: number;
  activeSessions: number;
  activeDevices: number;
  lastLogin: Date | null;
  lastActivity: Date | null;
  accountAgeDays: number;
  /** Share of the profile fields filled in, 0–100. */
  profileCompleteness: number;
  kycStatus: KycStatusValue;
  pointsEarned: bigint;
  pointsSpent: bigint;
  /** ACTIVITY_DAYS entries, oldest first, days without events included. */
  dailyActivity: DailyActivity[];
}

export interface UsageStatsDomain {
  /** The caller's statistics. */
  get(caller: Caller): Promise<UsageStats>;
}

export interface UsageStatsDomainDeps {
  sequelize: Sequelize;
  models: Pick<Models, "User">;
}

interface SummaryRow {
  total_logins: number;
  last_login: Date | null;
  last_event: Date | null;
  active_sessions: number;
  last_session_use: Date | null;
  active_devices: number;
  kyc_status: KycStatusValue | null;
  full_name: string | null;
  date_of_birth: string | null;
  address: string | null;
  avatar_url: string | null;
  points_earned: string;
  points_spent: string;
}

// Aggregates of the user's rows, each through its (user_id, …) index. Point sums are
// numeric, sent as text to stay exact beyond 2^53.
const SUMMARY_SQL = `
SELECT
  a.total_logins, a.last_login, a.last_event,
  s.active_sessions, s.last_session_use,
  d.active_devices,
  k.status AS kyc_status,
  p.full_name, p.date_of_birth::text AS date_of_birth, p.address, p.avatar_url,
  t.points_earned, t.points_spent
FROM (SELECT $1::uuid AS id) u
CROSS JOIN LATERAL (
  SELECT count(*) FILTER (WHERE action = ANY($2))::int AS total_logins,
         max(created_at) FILTER (WHERE action = ANY($2)) AS last_login,
         max(created_at) AS last_event
  FROM user_audit_logs WHERE user_id = u.id
) a
CROSS JOIN LATERAL (
  SELECT count(*) FILTER (WHERE revoked_at IS NULL AND expires_at > now())::int AS active_sessions,
         max(last_used_at) AS last_session_use
  FROM sessions WHERE user_id = u.id
) s
CROSS JOIN LATERAL (
  SELECT count(*)::int AS active_devices FROM user_devices WHERE user_id = u.id AND is_active
) d
CROSS JOIN LATERAL (
  SELECT COALESCE(sum(delta) FILTER (WHERE delta > 0), 0)::text AS points_earned,
         COALESCE(-sum(delta) FILTER (WHERE delta < 0), 0)::text AS points_spent
  FROM points_transactions WHERE user_id = u.id
) t
LEFT JOIN user_kyc k ON k.user_id = u.id
LEFT JOIN user_profiles p ON p.user_id = u.id`;

// The last $3 UTC days, today included, each joined to its audit rows by a created_at range
// (index-friendly), so days without events come out as zeros. The whole period's bounds are
// repeated as plain conditions so that PostgreSQL prunes the audit log's monthly partitions
// outside it when the query starts (the per-day bounds come from the join: no pruning).
const DAILY_SQL = `
WITH days AS (
  SELECT generate_series((now() AT TIME ZONE 'UTC')::date - ($3::int - 1), (now() AT TIME ZONE 'UTC')::date, interval '1 day')::date AS day
)
SELECT to_char(days.day, 'YYYY-MM-DD') AS date,
       count(a.id) FILTER (WHERE a.action = ANY($2))::int AS logins,
       count(a.id)::int AS events
FROM days
LEFT JOIN user_audit_logs a
  ON a.user_id = $1
 AND a.created_at >= days.day::timestamp AT TIME ZONE 'UTC'
 AND a.created_at < (days.day + 1)::timestamp AT TIME ZONE 'UTC'
 AND a.created_at >= ((now() AT TIME ZONE 'UTC')::date - ($3::int - 1))::timestamp AT TIME ZONE 'UTC'
 AND a.created_at < ((now() AT TIME ZONE 'UTC')::date + 1)::timestamp AT TIME ZONE 'UTC'
GROUP BY days.day
ORDER BY days.day`;

const DAY_MS = 86_400_000;

/** The latest of the dates given, null when there is none. */
function latest(...dates: Array<Date | null | undefined>): Date | null {
  const times = dates.filter((d): d is Date => d instanceof Date).map((d) => d.getTime());
  return times.length ? new Date(Math.max(...times)) : null;
}

export function createUsageStatsDomain({ sequelize, models }: UsageStatsDomainDeps): UsageStatsDomain {
  async function get(caller: Caller): Promise<UsageStats> {
    const userId = callerUserId(caller);
    const loginActions = [...LOGIN_ACTIONS];
    return runTransaction(sequelize, caller.signal, { isolationLevel: Transaction.ISOLATION_LEVELS.REPEATABLE_READ }, async (transaction) => {
      const user = await models.User.findByPk(userId, { attributes: ["dateJoined", "lastLogin", "lastActivityAt"], transaction });
      if (!user) throw notFound("User not found");
      // Always exactly one row: the aggregates run over a one-row FROM.
      const [summary] = await sequelize.query<SummaryRow>(SUMMARY_SQL, { bind: [userId, loginActions], type: QueryTypes.SELECT, transaction });
      const dailyActivity = await sequelize.query<DailyActivity>(DAILY_SQL, { bind: [userId, loginActions, ACTIVITY_DAYS], type: QueryTypes.SELECT, transaction });
      // Latest evidence of every source: the audit trail is pruned after a year, users.last_login is not.
      const lastLogin = latest(user.lastLogin, summary.last_login);
      return {
        totalLogins: summary.total_logins,
        activeSessions: summary.active_sessions,
        activeDevices: summary.active_devices,
        lastLogin,
        lastActivity: latest(lastLogin, user.lastActivityAt, summary.last_event, summary.last_session_use),
        accountAgeDays: Math.max(0, Math.floor((Date.now() - user.dateJoined.getTime()) / DAY_MS)),
        profileCompleteness: profileCompleteness({
          fullName: summary.full_name,
          dateOfBirth: summary.date_of_birth,
          address: summary.address,
          avatarUrl: summary.avatar_url,
        }),
        kycStatus: summary.kyc_status ?? "NOT_SUBMITTED",
        pointsEarned: BigInt(summary.points_earned),
        pointsSpent: BigInt(summary.points_spent),
        dailyActivity,
      };
    });
  }

  return { get };
}
