// The staff side of accounts (DESIGN §10, AdminService): finding users, reading everything
// about one, deactivating and reactivating, and ending a user's sessions.
//
// - Search is a case-insensitive prefix of username, e-mail or phone number, backed by the
//   pattern-ops indexes of migration 0006 (an OR of three index range scans), newest
//   accounts first. Pages are keyset on (date_joined, id) with date_joined in exact
//   microseconds: accounts that register meanwhile sort before the first page, so a later
//   page neither repeats nor skips anyone.
// - Deactivation ends every session in its transaction: the auth interceptor's session check
//   reads the database on every call, so every instance refuses the user's tokens at once.
// - Every change is audited in its transaction with the acting staff user (actor_id) and the
//   reason, and recorded in the outbox for external services.
import { QueryTypes, type Sequelize } from "sequelize";
import { runTransaction, writeAudit, type Models } from "../store/index.js";
import type { KycStatusValue } from "../store/models/index.js";
import { checkPageSize, decodePageToken, encodePageToken, filtersDigest } from "./admin-paging.js";
import { audited } from "./audit.js";
import { staffOrServiceActorId, staffUserId, type Caller } from "./caller.js";
import { deviceOf, type Device } from "./devices.js";
import { failedPrecondition, invalid, notFound, Violations } from "./errors.js";
import { recordOf as kycRecordOf, type KycRecord } from "./kyc.js";
import { parseDecimal } from "./money.js";
import { recordUserChange } from "./outbox.js";
import { walletOf, type Wallet } from "./points.js";
import { profileOfRow, type Profile } from "./profiles.js";
import { endUserSessions, liveSessionsOf, type SessionView } from "./sessions.js";
import { loadUsers, USER_VIEW_COLUMNS, viewOf, type UserRow, type UserView } from "./users.js";
import { characterCount, hasControlCharacters, isUuid } from "./validation.js";

export interface UserSummary {
  user: UserView;
  kycStatus: KycStatusValue;
  points: bigint;
  deletionScheduledFor: Date | null;
}

export interface ListUsersInput {
  /** Prefix of username, e-mail or phone number; "" for every user. */
  query: string;
  /** Undefined: active and inactive. */
  isActive?: boolean;
  /** Undefined: any KYC state. */
  kycStatus?: KycStatusValue;
  /** 1–100; 0 means the default (20). */
  pageSize: number;
  /** "" for the first page. */
  pageToken: string;
}

export interface UserPage {
  users: UserSummary[];
  /** "" on the last page. */
  nextPageToken: string;
}

export interface UserDetail {
  user: UserView;
  profile: Profile;
  kyc: KycRecord;
  wallet: Wallet;
  /** Active devices, most recently used first. */
  devices: Device[];
  /** Live sessions, most recently used first. */
  sessions: SessionView[];
  deletionScheduledFor: Date | null;
  deactivatedAt: Date | null;
}

export interface SetUserActiveInput {
  userId: string;
  active: boolean;
  /** Required to deactivate. */
  reason: string;
}

export interface AdminUsers {
  /** Staff: users by prefix and filters, newest first. */
  list(caller: Caller, input: ListUsersInput): Promise<UserPage>;
  /** Staff or service: everything about one user. */
  get(caller: Caller, userId: string): Promise<UserDetail>;
  /** Staff: deactivates (ending every session) or reactivates a user; answers the user and the sessions ended. */
  setActive(caller: Caller, input: SetUserActiveInput): Promise<{ user: UserView; revokedSessions: number }>;
  /** Staff: ends every live session of a user; answers how many. */
  revokeSessions(caller: Caller, userId: string, reason: string): Promise<number>;
}

export interface AdminUsersDeps {
  sequelize: Sequelize;
  models: Models;
  /** Cash value of one point (config.pointsValue). */
  pointsValue: string;
}

// ---------------------------------------------------------------------------------------
// Validation

const QUERY_MAX = 100;
const REASON_MAX = 500;
const KYC_STATUSES: KycStatusValue[] = ["NOT_SUBMITTED", "PENDING", "APPROVED", "REJECTED"];

function checkUserId(v: Violations, userId: string): void {
  if (!userId) v.add("user_id", "is required");
  else if (!isUuid(userId)) v.add("user_id", "must be a UUID");
}

function checkReason(v: Violations, raw: string, required: boolean): string | null {
  const reason = raw.trim();
  if (!reason) {
    if (required) v.add("reason", "is required to deactivate");
    return null;
  }
  if (characterCount(reason) > REASON_MAX) v.add("reason", `must be at most ${REASON_MAX} characters`);
  else if (hasControlCharacters(reason, true)) v.add("reason", "must not contain control characters");
  return reason;
}

/** A LIKE pattern matching values that start with `prefix` (its %, _ and \ taken literally). */
const prefixPattern = (prefix: string) => `${prefix.replace(/[\\%_]/g, "\\$&")}%`;

/** The phone-number prefix a query can be ("+1 555" → "+1555", "1555" → "+1555"), or undefined. */
function phonePrefix(query: string): string | undefined {
  const compact = query.replace(/[\s().-]/g, "");
  if (!/^\+?\d{1,15}$/.test(compact)) return undefined;
  return compact.startsWith("+") ? compact : `+${compact}`;
}

interface ListPlan {
  query: string;
  isActive?: boolean;
  kycStatus?: KycStatusValue;
  limit: number;
  digest: string;
  after?: { micros: string; id: string };
}

function planList(input: ListUsersInput): ListPlan {
  const v = new Violations();
  const query = input.query.trim().toLowerCase();
  if (characterCount(query) > QUERY_MAX) v.add("query", `must be at most ${QUERY_MAX} characters`);
  else if (hasControlCharacters(query)) v.add("query", "must not contain control characters");
  if (input.kycStatus !== undefined && !KYC_STATUSES.includes(input.kycStatus)) v.add("kyc_status", "must be NOT_SUBMITTED, PENDING, APPROVED or REJECTED");
  const limit = checkPageSize(v, input.pageSize);
  v.throwIfAny();
  const digest = filtersDigest(["users", query, input.isActive ?? null, input.kycStatus ?? null]);
  const plan: ListPlan = { query, isActive: input.isActive, kycStatus: input.kycStatus, limit, digest };
  if (input.pageToken) {
    const [micros, id] = decodePageToken(input.pageToken, digest, [/^-?\d{1,19}$/, /^[0-9a-f-]{36}$/]);
    if (!isUuid(id!)) throw invalid([{ field: "page_token", description: "is not a token this service issued" }]);
    plan.after = { micros: micros!, id: id! };
  }
  return plan;
}

// ---------------------------------------------------------------------------------------

type SummaryRow = UserRow & { deletion_scheduled_for: Date | null; kyc_status: KycStatusValue; points: string; cursor_micros: string };

/** The KYC record of a user who never submitted. */
const notSubmitted = (userId: string): KycRecord => ({
  userId,
  status: "NOT_SUBMITTED",
  documentType: null,
  documentNumberMasked: null,
  documentFrontUrl: null,
  documentBackUrl: null,
  rejectionReason: null,
  submittedAt: null,
  verifiedAt: null,
  reviewedBy: null,
});

export function createAdminUsers({ sequelize, models, pointsValue }: AdminUsersDeps): AdminUsers {
  const value = parseDecimal(pointsValue);

  async function list(caller: Caller, input: ListUsersInput): Promise<UserPage> {
    staffUserId(caller);
    const plan = planList(input);
    const bind: unknown[] = [];
    const param = (value: unknown) => `$${bind.push(value)}`;
    const conditions = ["u.erased_at IS NULL"];
    if (plan.query) {
      const pattern = param(prefixPattern(plan.query));
      const matches = [`lower(u.username) LIKE ${pattern}`, `lower(u.email) LIKE ${pattern}`];
      const phone = phonePrefix(plan.query);
      if (phone) matches.push(`u.phone_number LIKE ${param(prefixPattern(phone))}`);
      conditions.push(`(${matches.join(" OR ")})`);
    }
    if (plan.isActive !== undefined) conditions.push(`u.is_active = ${param(plan.isActive)}`);
    if (plan.kycStatus) conditions.push(`coalesce(k.status, 'NOT_SUBMITTED') = ${param(plan.kycStatus)}`);
    if (plan.after) {
      conditions.push(`(u.date_joined, u.id) < ('epoch'::timestamptz + ${param(plan.after.micros)}::bigint * interval '1 microsecond', ${param(plan.after.id)}::uuid)`);
    }
    // An unnamed statement (not queryPrepared): PostgreSQL plans it with the actual pattern,
    // which an index range scan on a LIKE prefix needs.
    const rows = await sequelize.query<SummaryRow>(
      `SELECT ${USER_VIEW_COLUMNS}, u.deletion_scheduled_for, coalesce(k.status, 'NOT_SUBMITTED') AS kyc_status,
              coalesce(p.current_points, 0)::text AS points, (extract(epoch FROM u.date_joined) * 1000000)::bigint::text AS cursor_micros
         FROM users u LEFT JOIN user_kyc k ON k.user_id = u.id LEFT JOIN user_points p ON p.user_id = u.id
        WHERE ${conditions.join(" AND ")}
        ORDER BY u.date_joined DESC, u.id DESC
        LIMIT ${param(plan.limit + 1)}`,
      { bind, type: QueryTypes.SELECT },
    );
    const page = rows.slice(0, plan.limit);
    const last = page.at(-1);
    return {
      users: page.map((r) => ({ user: viewOf(r), kycStatus: r.kyc_status, points: BigInt(r.points), deletionScheduledFor: r.deletion_scheduled_for })),
      nextPageToken: rows.length > plan.limit && last ? encodePageToken(plan.digest, [last.cursor_micros, last.id]) : "",
    };
  }

  async function get(caller: Caller, userId: string): Promise<UserDetail> {
    staffOrServiceActorId(caller);
    const v = new Violations();
    checkUserId(v, userId);
    v.throwIfAny();
    const id = userId.toLowerCase();
    const user = await models.User.findByPk(id);
    if (!user) throw notFound("User not found");
    const [views, profile, kyc, points, devices, sessions] = await Promise.all([
      loadUsers(sequelize, [id]),
      models.UserProfile.findByPk(id),
      models.UserKyc.findByPk(id),
      models.UserPoints.findByPk(id),
      models.UserDevice.findAll({ where: { userId: id, isActive: true }, order: [["lastUsed", "DESC"], ["id", "DESC"]] }),
      liveSessionsOf(models, id),
    ]);
    return {
      user: views.get(id)!,
      profile: profileOfRow(profile),
      kyc: kyc && kyc.status !== "NOT_SUBMITTED" ? kycRecordOf(kyc, "staff") : notSubmitted(id),
      wallet: walletOf(points, value),
      devices: devices.map(deviceOf),
      sessions,
      deletionScheduledFor: user.erasedAt ? null : (user.deletionScheduledFor ?? null),
      deactivatedAt: user.isActive ? null : (user.deactivatedAt ?? null),
    };
  }

  async function setActive(caller: Caller, input: SetUserActiveInput): Promise<{ user: UserView; revokedSessions: number }> {
    const actorId = staffUserId(caller);
    const v = new Violations();
    checkUserId(v, input.userId);
    const reason = checkReason(v, input.reason, !input.active);
    v.throwIfAny();
    const userId = input.userId.toLowerCase();
    if (!input.active && userId === actorId) throw failedPrecondition("Staff cannot deactivate themselves");

    return runTransaction(sequelize, caller.signal, async (t) => {
      const user = await models.User.findByPk(userId, { transaction: t, lock: t.LOCK.UPDATE });
      if (!user) throw notFound("User not found");
      if (user.erasedAt) throw failedPrecondition("The account was erased");
      let revokedSessions = 0;
      if (input.active && !user.isActive) {
        if (user.deletionScheduledFor) throw failedPrecondition("The account's deletion is pending: the user restores it by signing in");
        // Counts as activity: the inactivity job would otherwise deactivate it again at its next run.
        const now = new Date();
        await user.update({ isActive: true, deactivatedAt: null, lastActivityAt: now }, { transaction: t });
        await writeAudit(
          models,
          audited(caller, { userId, actorId, action: "user.reactivated", entityType: "user", entityId: userId, oldValues: { is_active: false }, newValues: { is_active: true, reason } }),
          t,
        );
        await recordUserChange(models, t, userId, "user.reactivated");
      } else if (!input.active && (user.isActive || user.deletionScheduledFor)) {
        // A deletion-pending account is inactive already; a new deactivation time (no longer its
        // deletion request's) keeps a sign-in during the grace from restoring it. The erasure stays due.
        const wasActive = user.isActive;
        await user.update({ isActive: false, deactivatedAt: new Date() }, { transaction: t });
        revokedSessions = (await endUserSessions(sequelize, t, userId, "deactivated_by_staff")).length;
        await writeAudit(
          models,
          audited(caller, {
            userId,
            actorId,
            action: "user.deactivated",
            entityType: "user",
            entityId: userId,
            oldValues: { is_active: wasActive },
            newValues: { is_active: false, reason, sessions_ended: revokedSessions },
          }),
          t,
        );
        await recordUserChange(models, t, userId, "user.deactivated");
      }
      // Setting the state the account already has changes (and records) nothing.
      return { user: (await loadUsers(sequelize, [userId], t)).get(userId)!, revokedSessions };
    });
  }

  async function revokeSessions(caller: Caller, userId: string, rawReason: string): Promise<number> {
    const actorId = staffUserId(caller);
    const v = new Violations();
    checkUserId(v, userId);
    const reason = checkReason(v, rawReason, false);
    v.throwIfAny();
    const id = userId.toLowerCase();
    return runTransaction(sequelize, caller.signal, async (t) => {
      const user = await models.User.findByPk(id, { transaction: t, lock: t.LOCK.UPDATE });
      if (!user) throw notFound("User not found");
      const ended = await endUserSessions(sequelize, t, id, "revoked_by_staff");
      await writeAudit(
        models,
        audited(caller, { userId: id, actorId, action: "sessions.revoked_by_staff", entityType: "session", entityId: null, newValues: { revoked_count: ended.length, reason } }),
        t,
      );
      return ended.length;
    });
  }

  return { list, get, setActive, revokeSessions };
}
