// Points (DESIGN §2, PointsService): the caller's wallet and ledger, and the staff/service
// adjustments that are the only way points change.
//
// Invariants:
// - user_points.current_points is the sum of the user's ledger deltas and never below zero;
//   credits add to total_points (ever earned), debits to total_spent.
// - Adjustments of one user are serialised by locking their user_points row (FOR UPDATE).
//   A ledger row's created_at is read from the clock after that lock (clock_timestamp(),
//   not the transaction's start), so ledger order is the order adjustments applied in.
// - idempotency_key is unique. The same key with the same arguments (request_fingerprint)
//   returns the first result and changes nothing: its ledger entry and the wallet right
//   after it (balance_after, and total_points as it stood then), byte for byte the first
//   answer. The same key with other arguments is invalid_argument.
//
// Balances are computed in exact decimal arithmetic (money.ts): points × POINTS_VALUE with
// two places, rounded half away from zero.
import { createHash } from "node:crypto";
import { ForeignKeyConstraintError, literal, QueryTypes, UniqueConstraintError, type Sequelize, type Transaction } from "sequelize";
import { writeAudit } from "../store/audit-writer.js";
import { runTransaction } from "../store/transaction.js";
import type { Models, PointsTransaction, UserPoints } from "../store/models/index.js";
import { audited, changedFields } from "./audit.js";
import { callerUserId, staffOrServiceActorId, type Caller } from "./caller.js";
import { failedPrecondition, invalid, notFound, Violations } from "./errors.js";
import { cashValue, parseDecimal, type Decimal } from "./money.js";
import { characterCount, hasControlCharacters, isUuid } from "./validation.js";

export interface Wallet {
  /** Cash value of `points`: a decimal string with two places. */
  balance: string;
  /** Current points. */
  points: bigint;
  /** Points ever earned. */
  totalPoints: bigint;
  /** Null for a user whose points never changed. */
  lastUpdated: Date | null;
}

export interface LedgerEntry {
  id: string;
  userId: string;
  delta: bigint;
  balanceAfter: bigint;
  reason: string;
  createdAt: Date;
}

export interface LedgerPageRequest {
  /** 1–100; 0 means the default (20). */
  pageSize: number;
  /** Empty for the first page. */
  pageToken: string;
}

export interface LedgerPage {
  /** Newest first. */
  transactions: LedgerEntry[];
  /** Empty on the last page. */
  nextPageToken: string;
}

export interface AdjustPointsInput {
  userId: string;
  /** Non-zero: positive credits, negative debits. */
  delta: bigint;
  reason: string;
  idempotencyKey: string;
}

export interface Adjustment {
  transaction: LedgerEntry;
  /** The wallet right after this entry (see the file comment on replays). */
  balance: string;
  points: bigint;
  totalPoints: bigint;
}

export interface PointsDomain {
  /** The caller's wallet (zeros for a user whose points never changed). */
  getWallet(caller: Caller): Promise<Wallet>;
  /** The caller's ledger, newest first. */
  listTransactions(caller: Caller, page: LedgerPageRequest): Promise<LedgerPage>;
  /**
   * Credits or debits a user's points, for staff users and services. not_found for an
   * unknown user; failed_precondition for a debit beyond the current points.
   */
  adjust(caller: Caller, input: AdjustPointsInput): Promise<Adjustment>;
}

export interface PointsDomainDeps {
  sequelize: Sequelize;
  models: Pick<Models, "UserPoints" | "PointsTransaction" | "UserAuditLog">;
  /** Cash value of one point, a decimal string (config.pointsValue). */
  pointsValue: string;
}

// ---------------------------------------------------------------------------------------
// Validation

const INT64_MAX = 2n ** 63n - 1n;
const REASON_MAX = 255;
const IDEMPOTENCY_KEY_MAX = 128;
const DEFAULT_PAGE_SIZE = 20;
const MAX_PAGE_SIZE = 100;

function validateAdjustment(input: AdjustPointsInput): AdjustPointsInput {
  const v = new Violations();
  if (!isUuid(input.userId)) v.add("user_id", "must be a UUID");
  if (input.delta === 0n) v.add("delta", "must not be zero");
  else if (input.delta > INT64_MAX || input.delta < -INT64_MAX) v.add("delta", "out of range");
  const reason = input.reason.trim();
  const reasonLength = characterCount(reason);
  if (reasonLength === 0) v.add("reason", "required");
  else if (reasonLength > REASON_MAX) v.add("reason", `must be at most ${REASON_MAX} characters`);
  else if (hasControlCharacters(reason)) v.add("reason", "must not contain control characters");
  const keyLength = characterCount(input.idempotencyKey);
  if (input.idempotencyKey.trim() === "") v.add("idempotency_key", "required");
  else if (keyLength > IDEMPOTENCY_KEY_MAX) v.add("idempotency_key", `must be at most ${IDEMPOTENCY_KEY_MAX} characters`);
  else if (hasControlCharacters(input.idempotencyKey)) v.add("idempotency_key", "must not contain control characters");
  v.throwIfAny();
  return { userId: input.userId.toLowerCase(), delta: input.delta, reason, idempotencyKey: input.idempotencyKey };
}

function validatePage({ pageSize, pageToken }: LedgerPageRequest): { limit: number; after: LedgerCursor | undefined } {
  const v = new Violations();
  if (!Number.isInteger(pageSize) || pageSize < 0 || pageSize > MAX_PAGE_SIZE) v.add("page_size", `must be from 1 to ${MAX_PAGE_SIZE}`);
  const after = pageToken ? decodeCursor(pageToken) : undefined;
  if (after === null) v.add("page_token", "invalid page token");
  v.throwIfAny();
  return { limit: pageSize || DEFAULT_PAGE_SIZE, after: after ?? undefined };
}

/** Where a page ends: created_at to the microsecond (ISO, UTC) and id of its last entry. */
interface LedgerCursor {
  at: string;
  id: string;
}

const CURSOR_AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/** The opaque page token: base64url of the JSON array [at, id]. */
function encodeCursor({ at, id }: LedgerCursor): string {
  return Buffer.from(JSON.stringify([at, id])).toString("base64url");
}

/** The cursor of a page token; null when it is not one this service made. */
function decodeCursor(token: string): LedgerCursor | null {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(token)) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    return null;
  }
  if (!Array.isArray(parsed) || parsed.length !== 2) return null;
  const [at, id] = parsed as unknown[];
  if (typeof at !== "string" || typeof id !== "string" || !CURSOR_AT.test(at) || !isUuid(id)) return null;
  // A real instant (PostgreSQL refuses "2024-02-30"): it survives a round trip through Date.
  const millis = `${at.slice(0, 23)}Z`;
  const date = new Date(millis);
  if (Number.isNaN(date.getTime()) || date.toISOString() !== millis) return null;
  return { at, id };
}

/** Tells a genuine retry from a reused key: a hash of what the adjustment does. */
function fingerprintOf({ userId, delta, reason }: AdjustPointsInput): string {
  return createHash("sha256").update(JSON.stringify([userId, delta.toString(), reason])).digest("hex");
}

/** The wallet a user_points row holds (zeros for a user whose points never changed); `value` is POINTS_VALUE. */
export function walletOf(row: UserPoints | null, value: Decimal): Wallet {
  if (!row) return { balance: cashValue(0n, value), points: 0n, totalPoints: 0n, lastUpdated: null };
  const { current, total } = totalsOf(row);
  return { balance: cashValue(current, value), points: current, totalPoints: total, lastUpdated: row.lastUpdated };
}

// ---------------------------------------------------------------------------------------
// Reading and writing

function entryOf(row: PointsTransaction): LedgerEntry {
  return { id: row.id, userId: row.userId, delta: BigInt(row.delta), balanceAfter: BigInt(row.balanceAfter), reason: row.reason, createdAt: row.createdAt };
}

interface Totals {
  current: bigint;
  total: bigint;
  spent: bigint;
}

const totalsOf = (row: UserPoints): Totals => ({ current: BigInt(row.currentPoints), total: BigInt(row.totalPoints), spent: BigInt(row.totalSpent) });

/** Audit values use the column names; BIGINTs as decimal strings (exact in JSON). */
const auditValues = (t: Totals) => ({ current_points: String(t.current), total_points: String(t.total), total_spent: String(t.spent) });

const keyReused = () => invalid([{ field: "idempotency_key", description: "already used with different arguments" }]);

/** A unique violation of points_transactions.idempotency_key (a concurrent request with the same key won). */
function isKeyConflict(err: unknown): boolean {
  return err instanceof UniqueConstraintError && (err.parent as { constraint?: string }).constraint === "points_transactions_idempotency_key_key";
}

interface LedgerRow {
  id: string;
  user_id: string;
  delta: string;
  balance_after: string;
  reason: string;
  created_at: Date;
  /** created_at to the microsecond, for the page token (a Date keeps milliseconds only). */
  cursor_at: string;
}

export function createPointsDomain({ sequelize, models, pointsValue }: PointsDomainDeps): PointsDomain {
  const value: Decimal = parseDecimal(pointsValue);

  function adjustmentOf(row: PointsTransaction, totalPoints: bigint): Adjustment {
    const transaction = entryOf(row);
    return { transaction, balance: cashValue(transaction.balanceAfter, value), points: transaction.balanceAfter, totalPoints };
  }

  async function getWallet(caller: Caller): Promise<Wallet> {
    return walletOf(await models.UserPoints.findByPk(callerUserId(caller)), value);
  }

  async function listTransactions(caller: Caller, page: LedgerPageRequest): Promise<LedgerPage> {
    const userId = callerUserId(caller);
    const { limit, after } = validatePage(page);
    const rows = await sequelize.query<LedgerRow>(
      `SELECT id, user_id, delta, balance_after, reason, created_at,
              to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at
         FROM points_transactions
        WHERE user_id = :userId ${after ? "AND (created_at, id) < (:afterAt::timestamptz, :afterId::uuid)" : ""}
        ORDER BY created_at DESC, id DESC
        LIMIT :limit`,
      { replacements: { userId, afterAt: after?.at ?? null, afterId: after?.id ?? null, limit: limit + 1 }, type: QueryTypes.SELECT },
    );
    const pageRows = rows.slice(0, limit);
    const last = pageRows[pageRows.length - 1];
    return {
      transactions: pageRows.map((r) => ({
        id: r.id,
        userId: r.user_id,
        delta: BigInt(r.delta),
        balanceAfter: BigInt(r.balance_after),
        reason: r.reason,
        createdAt: r.created_at,
      })),
      nextPageToken: rows.length > limit && last ? encodeCursor({ at: last.cursor_at, id: last.id }) : "",
    };
  }

  /**
   * The answer to a repeated key: the first adjustment and the wallet right after it. total_points
   * then = total_points now − the credits applied since; one statement, so one snapshot.
   */
  async function replay(first: PointsTransaction, fingerprint: string, transaction?: Transaction): Promise<Adjustment> {
    if (first.requestFingerprint !== fingerprint) throw keyReused();
    const [row] = await sequelize.query<{ total_points: string }>(
      `SELECT p.total_points - COALESCE(SUM(later.delta) FILTER (WHERE later.delta > 0), 0) AS total_points
         FROM points_transactions t
         JOIN user_points p ON p.user_id = t.user_id
         LEFT JOIN points_transactions later ON later.user_id = t.user_id AND (later.created_at, later.id) > (t.created_at, t.id)
        WHERE t.id = :id
        GROUP BY p.total_points`,
      { replacements: { id: first.id }, type: QueryTypes.SELECT, transaction },
    );
    return adjustmentOf(first, BigInt(row!.total_points));
  }

  const findByKey = (idempotencyKey: string, transaction?: Transaction) => models.PointsTransaction.findOne({ where: { idempotencyKey }, transaction });

  /** The user's wallet row, created when missing and locked for the transaction; not_found for an unknown user. */
  async function lockWallet(userId: string, transaction: Transaction): Promise<UserPoints> {
    try {
      // ON CONFLICT DO NOTHING: a concurrent first adjustment may create it first.
      await sequelize.query("INSERT INTO user_points (user_id) VALUES (:userId) ON CONFLICT (user_id) DO NOTHING", { replacements: { userId }, transaction });
    } catch (err) {
      if (err instanceof ForeignKeyConstraintError) throw notFound("User not found");
      throw err;
    }
    return (await models.UserPoints.findByPk(userId, { transaction, lock: transaction.LOCK.UPDATE, rejectOnEmpty: true }))!;
  }

  async function apply(caller: Caller, actorId: string, input: AdjustPointsInput, fingerprint: string): Promise<Adjustment> {
    return runTransaction(sequelize, caller.signal, async (transaction) => {
      const wallet = await lockWallet(input.userId, transaction);
      // A retry of this user's adjustment that waited for the lock finds the first one here.
      const first = await findByKey(input.idempotencyKey, transaction);
      if (first) return replay(first, fingerprint, transaction);

      const before = totalsOf(wallet);
      const after: Totals = {
        current: before.current + input.delta,
        total: input.delta > 0n ? before.total + input.delta : before.total,
        spent: input.delta < 0n ? before.spent - input.delta : before.spent,
      };
      if (after.current < 0n) throw failedPrecondition(`Insufficient points: the wallet holds ${before.current}, the debit is ${-input.delta}`);
      if (after.current > INT64_MAX || after.total > INT64_MAX || after.spent > INT64_MAX) throw failedPrecondition("The adjustment would overflow the wallet");

      const row = await models.PointsTransaction.create(
        {
          userId: input.userId,
          delta: String(input.delta),
          balanceAfter: String(after.current),
          reason: input.reason,
          idempotencyKey: input.idempotencyKey,
          requestFingerprint: fingerprint,
          actorId,
          // The clock after the lock, not the transaction's start: ledger order = applied order.
          createdAt: literal("clock_timestamp()") as unknown as Date,
        },
        { transaction },
      );
      await wallet.update({ currentPoints: String(after.current), totalPoints: String(after.total), totalSpent: String(after.spent) }, { transaction });
      const diff = changedFields(auditValues(before), auditValues(after))!;
      await writeAudit(
        models,
        // The changed totals, and why (every staff action's audit row names its reason).
        audited(caller, { userId: input.userId, actorId, action: "points.adjusted", entityType: "points", entityId: row.id, oldValues: diff.oldValues, newValues: { ...diff.newValues, reason: input.reason } }),
        transaction,
      );
      return adjustmentOf(row, after.total);
    });
  }

  async function adjust(caller: Caller, rawInput: AdjustPointsInput): Promise<Adjustment> {
    const actorId = staffOrServiceActorId(caller);
    const input = validateAdjustment(rawInput);
    const fingerprint = fingerprintOf(input);
    const first = await findByKey(input.idempotencyKey);
    if (first) return replay(first, fingerprint);
    try {
      return await apply(caller, actorId, input, fingerprint);
    } catch (err) {
      // The same key was inserted meanwhile by a request for another user (the wallet lock
      // serialises only one user's requests): answer as for any repeated key.
      if (!isKeyConflict(err)) throw err;
      const winner = await findByKey(input.idempotencyKey);
      if (!winner) throw err;
      return replay(winner, fingerprint);
    }
  }

  return { getWallet, listTransactions, adjust };
}
