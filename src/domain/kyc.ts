// KYC (DESIGN §2, KycService): one user_kyc row per user and its state machine
//
//   NOT_SUBMITTED (or no row) ──submit──▶ PENDING ──approve──▶ APPROVED
//                        REJECTED ──submit──▶ PENDING ──reject───▶ REJECTED
//
// Users submit and read their own record; staff list submissions and review PENDING ones.
// Every change is made under a row lock and recorded (recordChange) in its transaction.
//
// Document numbers are personal data: they never reach the logs, the audit trail holds them
// masked (last 4 characters), and only staff views carry them in full.
import { ForeignKeyConstraintError, literal, Op, where, type InferAttributes, type Sequelize, type Transaction } from "sequelize";
import type { Logger } from "../logger.js";
import { writeAudit } from "../store/audit-writer.js";
import { runTransaction } from "../store/transaction.js";
import type { DocumentTypeValue, KycStatusValue, Models, UserKyc } from "../store/models/index.js";
import { audited, changedFields, type AuditEntry } from "./audit.js";
import { callerUserId, staffUserId, type Caller } from "./caller.js";
import { failedPrecondition, invalid, notFound, permissionDenied, Violations } from "./errors.js";
import { recordUserChange } from "./outbox.js";
import { characterCount, hasControlCharacters, httpsUrlProblem, isUuid } from "./validation.js";

export type { DocumentTypeValue, KycStatusValue };
export type KycDecisionValue = "APPROVE" | "REJECT";

/** A KYC record as callers see it. */
export interface KycRecord {
  userId: string;
  status: KycStatusValue;
  documentType: DocumentTypeValue | null;
  /** All but the last 4 characters masked. */
  documentNumberMasked: string | null;
  /** The full number: staff views only (ListKycSubmissions, ReviewKyc). */
  documentNumber?: string;
  documentFrontUrl: string | null;
  documentBackUrl: string | null;
  rejectionReason: string | null;
  submittedAt: Date | null;
  verifiedAt: Date | null;
  /** User id of the staff member who made the last decision. */
  reviewedBy: string | null;
}

export type KycStatusView = Pick<KycRecord, "status" | "rejectionReason" | "verifiedAt" | "submittedAt" | "documentType">;

export interface SubmitKycInput {
  /** Undefined when the request named no (known) type. */
  documentType?: DocumentTypeValue;
  documentNumber: string;
  documentFrontUrl: string;
  /** Required except for passports ("" = none). */
  documentBackUrl: string;
}

export interface ListKycInput {
  /** Undefined: every submitted record. */
  status?: KycStatusValue;
  /** 1–100; 0 means the default (20). */
  pageSize: number;
  /** "" for the first page. */
  pageToken: string;
}

export interface KycPage {
  submissions: KycRecord[];
  /** "" on the last page. */
  nextPageToken: string;
}

export interface ReviewKycInput {
  userId: string;
  /** Undefined when the request named no (known) decision. */
  decision?: KycDecisionValue;
  /** Required to reject; must be empty to approve. */
  rejectionReason: string;
}

export interface KycDomain {
  /** Submits the caller's documents; allowed with nothing submitted yet or after a rejection. */
  submit(caller: Caller, input: SubmitKycInput): Promise<KycRecord>;
  /** The caller's KYC state (NOT_SUBMITTED before any submission). */
  status(caller: Caller): Promise<KycStatusView>;
  /** Staff: submitted records, oldest submission first. */
  list(caller: Caller, input: ListKycInput): Promise<KycPage>;
  /** Staff: approves or rejects a PENDING submission of another user. */
  review(caller: Caller, input: ReviewKycInput): Promise<KycRecord>;
}

export interface KycDomainDeps {
  sequelize: Sequelize;
  models: Pick<Models, "UserKyc" | "UserAuditLog" | "OutboxEvent">;
  logger: Logger;
}

// ---------------------------------------------------------------------------------------
// Document numbers

interface DocumentRule {
  pattern: RegExp;
  description: string;
}

const documentRules: Record<DocumentTypeValue, DocumentRule> = {
  PASSPORT: { pattern: /^[A-Z0-9]{6,9}$/, description: "must be 6–9 letters and digits" },
  NATIONAL_ID: { pattern: /^[A-Z0-9]{5,20}$/, description: "must be 5–20 letters and digits" },
  DRIVING_LICENSE: { pattern: /^(?=.*[A-Z0-9])[A-Z0-9-]{5,20}$/, description: 'must be 5–20 letters, digits and "-"' },
};

/** Spaces removed, letters upper-cased. */
export function normalizeDocumentNumber(raw: string): string {
  return raw.replace(/\s+/g, "").toUpperCase();
}

const VISIBLE_CHARACTERS = 4;

/** "AB1234567" → "*****4567". */
export function maskDocumentNumber(documentNumber: string): string {
  const hidden = Math.max(0, documentNumber.length - VISIBLE_CHARACTERS);
  return "*".repeat(hidden) + documentNumber.slice(hidden);
}

// ---------------------------------------------------------------------------------------
// Validation (descriptions never quote the document number)

interface Submission {
  documentType: DocumentTypeValue;
  documentNumber: string;
  documentFrontUrl: string;
  documentBackUrl: string | null;
}

function validateSubmission(input: SubmitKycInput): Submission {
  const violations = new Violations();
  const { documentType } = input;
  const rule = documentType && Object.hasOwn(documentRules, documentType) ? documentRules[documentType] : undefined;
  const documentNumber = normalizeDocumentNumber(input.documentNumber);
  const documentFrontUrl = input.documentFrontUrl.trim();
  const documentBackUrl = input.documentBackUrl.trim();

  if (!rule) violations.add("document_type", "must be PASSPORT, NATIONAL_ID or DRIVING_LICENSE");
  if (!documentNumber) violations.add("document_number", "is required");
  else if (rule && !rule.pattern.test(documentNumber)) violations.add("document_number", rule.description);

  const frontProblem = documentFrontUrl ? httpsUrlProblem(documentFrontUrl) : "is required";
  if (frontProblem) violations.add("document_front_url", frontProblem);
  const backRequired = rule !== undefined && documentType !== "PASSPORT";
  const backProblem = documentBackUrl ? httpsUrlProblem(documentBackUrl) : backRequired ? "is required for this document type" : undefined;
  if (backProblem) violations.add("document_back_url", backProblem);

  violations.throwIfAny();
  return { documentType: documentType!, documentNumber, documentFrontUrl, documentBackUrl: documentBackUrl || null };
}

const REJECTION_REASON_MAX = 500;

type Decision = { status: "APPROVED" } | { status: "REJECTED"; rejectionReason: string };

function validateReview(input: ReviewKycInput): Decision {
  const violations = new Violations();
  const reason = input.rejectionReason.trim();
  if (!input.userId) violations.add("user_id", "is required");
  else if (!isUuid(input.userId)) violations.add("user_id", "must be a UUID");
  if (input.decision !== "APPROVE" && input.decision !== "REJECT") violations.add("decision", "must be APPROVE or REJECT");
  if (input.decision === "REJECT" && !reason) violations.add("rejection_reason", "is required to reject");
  if (input.decision === "APPROVE" && reason) violations.add("rejection_reason", "must be empty to approve");
  if (characterCount(reason) > REJECTION_REASON_MAX) violations.add("rejection_reason", `must be at most ${REJECTION_REASON_MAX} characters`);
  else if (hasControlCharacters(reason, true)) violations.add("rejection_reason", "must not contain control characters");
  violations.throwIfAny();
  return input.decision === "APPROVE" ? { status: "APPROVED" } : { status: "REJECTED", rejectionReason: reason };
}

// ---------------------------------------------------------------------------------------
// Paging: keyset on (submitted_at, user_id), the order of user_kyc_status_submitted_idx.
// The token carries the last row's key with submitted_at in exact microseconds (a JS Date
// would round them away and skip or repeat rows), plus the status filter it was made for.

const DEFAULT_PAGE_SIZE = 20;
const MAX_PAGE_SIZE = 100;
const SUBMITTED_STATUSES: KycStatusValue[] = ["PENDING", "APPROVED", "REJECTED"];
const CURSOR_MICROS = "(extract(epoch FROM submitted_at) * 1000000)::bigint";

interface Cursor {
  micros: string;
  userId: string;
}

function encodeToken(status: KycStatusValue | undefined, cursor: Cursor): string {
  return Buffer.from(JSON.stringify([status ?? "", cursor.micros, cursor.userId])).toString("base64url");
}

function decodeToken(token: string, status: KycStatusValue | undefined): Cursor {
  const bad = (description: string) => invalid([{ field: "page_token", description }]);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw bad("is not a token this service issued");
  }
  if (!Array.isArray(value) || value.length !== 3) throw bad("is not a token this service issued");
  const [tokenStatus, micros, userId] = value as unknown[];
  if (typeof micros !== "string" || !/^-?\d{1,19}$/.test(micros) || typeof userId !== "string" || !isUuid(userId)) {
    throw bad("is not a token this service issued");
  }
  if (tokenStatus !== (status ?? "")) throw bad("was issued for another status filter");
  return { micros, userId };
}

function validateList(input: ListKycInput): { statuses: KycStatusValue[]; pageSize: number; after?: Cursor } {
  const violations = new Violations();
  if (input.status === "NOT_SUBMITTED") violations.add("status", "must be PENDING, APPROVED or REJECTED (NOT_SUBMITTED records are not submissions)");
  const pageSize = input.pageSize || DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE_SIZE) violations.add("page_size", `must be 1–${MAX_PAGE_SIZE}`);
  violations.throwIfAny();
  return {
    statuses: input.status ? [input.status] : SUBMITTED_STATUSES,
    pageSize,
    after: input.pageToken ? decodeToken(input.pageToken, input.status) : undefined,
  };
}

// ---------------------------------------------------------------------------------------
// Views

type KycRow = InferAttributes<UserKyc>;

export function recordOf(row: KycRow, view: "owner" | "staff"): KycRecord {
  const record: KycRecord = {
    userId: row.userId,
    status: row.status,
    documentType: row.documentType ?? null,
    documentNumberMasked: row.documentNumber ? maskDocumentNumber(row.documentNumber) : null,
    documentFrontUrl: row.documentFrontUrl ?? null,
    documentBackUrl: row.documentBackUrl ?? null,
    rejectionReason: row.rejectionReason ?? null,
    submittedAt: row.submittedAt ?? null,
    verifiedAt: row.verifiedAt ?? null,
    reviewedBy: row.reviewedBy ?? null,
  };
  if (view === "staff" && row.documentNumber) record.documentNumber = row.documentNumber;
  return record;
}

/** The audited columns, document number masked, timestamps as ISO strings. */
function auditValues(row: KycRow): Record<string, unknown> {
  const iso = (date: Date | null | undefined) => date?.toISOString() ?? null;
  return {
    status: row.status,
    document_type: row.documentType ?? null,
    document_number: row.documentNumber ? maskDocumentNumber(row.documentNumber) : null,
    document_front_url: row.documentFrontUrl ?? null,
    document_back_url: row.documentBackUrl ?? null,
    rejection_reason: row.rejectionReason ?? null,
    submitted_at: iso(row.submittedAt),
    verified_at: iso(row.verifiedAt),
    reviewed_by: row.reviewedBy ?? null,
    reviewed_at: iso(row.reviewedAt),
  };
}

// ---------------------------------------------------------------------------------------

export function createKycDomain({ sequelize, models, logger }: KycDomainDeps): KycDomain {
  const log = logger.child({ component: "kyc" });

  /**
   * Records a change of a KYC record in the transaction that makes it: its audit row, and
   * the outbox row that tells external services (the webhook sync job), so that both commit
   * or roll back with the change. Every KYC change goes through here.
   */
  async function recordChange(userId: string, entry: AuditEntry, transaction: Transaction): Promise<void> {
    await writeAudit(models, entry, transaction);
    await recordUserChange(models, transaction, userId, entry.action);
  }

  /** The user's row, locked for the transaction; created (NOT_SUBMITTED) when missing. */
  async function lockedRecord(userId: string, transaction: Transaction): Promise<UserKyc> {
    const lock = transaction.LOCK.UPDATE;
    const existing = await models.UserKyc.findByPk(userId, { transaction, lock });
    if (existing) return existing;
    try {
      // ON CONFLICT DO NOTHING: a concurrent submit may insert it first; our lock below then
      // waits for that transaction and sees its outcome.
      await models.UserKyc.bulkCreate([{ userId }], { transaction, ignoreDuplicates: true });
    } catch (err) {
      if (err instanceof ForeignKeyConstraintError) throw notFound("User not found");
      throw err;
    }
    return models.UserKyc.findByPk(userId, { transaction, lock, rejectOnEmpty: true });
  }

  async function submit(caller: Caller, input: SubmitKycInput): Promise<KycRecord> {
    const userId = callerUserId(caller);
    const submission = validateSubmission(input);
    const row = await runTransaction(sequelize, caller.signal, async (transaction) => {
      const row = await lockedRecord(userId, transaction);
      if (row.status === "PENDING") throw failedPrecondition("A KYC submission is already pending review");
      if (row.status === "APPROVED") throw failedPrecondition("KYC is already approved");
      const before = auditValues(row);
      await row.update(
        {
          ...submission,
          status: "PENDING",
          documentNumberLast4: submission.documentNumber.slice(-VISIBLE_CHARACTERS),
          submittedAt: new Date(),
          rejectionReason: null,
          verifiedAt: null,
          reviewedBy: null,
          reviewedAt: null,
        },
        { transaction },
      );
      const diff = changedFields(before, auditValues(row));
      await recordChange(userId, audited(caller, { userId, action: "kyc.submitted", entityType: "kyc", entityId: userId, ...diff }), transaction);
      return row;
    });
    log.info({ userId, documentType: row.documentType }, "kyc submitted");
    return recordOf(row, "owner");
  }

  async function status(caller: Caller): Promise<KycStatusView> {
    const row = await models.UserKyc.findByPk(callerUserId(caller));
    return {
      status: row?.status ?? "NOT_SUBMITTED",
      rejectionReason: row?.rejectionReason ?? null,
      verifiedAt: row?.verifiedAt ?? null,
      submittedAt: row?.submittedAt ?? null,
      documentType: row?.documentType ?? null,
    };
  }

  async function list(caller: Caller, input: ListKycInput): Promise<KycPage> {
    staffUserId(caller);
    const { statuses, pageSize, after } = validateList(input);
    const conditions = [{ status: { [Op.in]: statuses } }];
    const afterCursor = after
      ? [where(literal("(submitted_at, user_id)"), Op.gt, literal(`('epoch'::timestamptz + ${sequelize.escape(after.micros)}::bigint * interval '1 microsecond', ${sequelize.escape(after.userId)}::uuid)`))]
      : [];
    const rows = (await models.UserKyc.findAll({
      attributes: { include: [[literal(CURSOR_MICROS), "cursorMicros"]] },
      where: { [Op.and]: [...conditions, ...afterCursor] },
      order: [["submittedAt", "ASC"], ["userId", "ASC"]],
      limit: pageSize + 1,
      raw: true,
    })) as unknown as Array<KycRow & { cursorMicros: string }>;

    const page = rows.slice(0, pageSize);
    const last = page.at(-1);
    return {
      submissions: page.map((row) => recordOf(row, "staff")),
      nextPageToken: rows.length > pageSize && last ? encodeToken(input.status, { micros: last.cursorMicros, userId: last.userId }) : "",
    };
  }

  async function review(caller: Caller, input: ReviewKycInput): Promise<KycRecord> {
    const reviewerId = staffUserId(caller);
    const decision = validateReview(input);
    const { userId } = input;
    if (userId === reviewerId) throw permissionDenied("Staff cannot review their own KYC submission");
    const row = await runTransaction(sequelize, caller.signal, async (transaction) => {
      const row = await models.UserKyc.findByPk(userId, { transaction, lock: transaction.LOCK.UPDATE });
      if (!row || row.status === "NOT_SUBMITTED") throw notFound("No KYC submission for this user");
      if (row.status !== "PENDING") throw failedPrecondition(`The KYC submission is ${row.status}, not PENDING`);
      const before = auditValues(row);
      const now = new Date();
      await row.update(
        {
          status: decision.status,
          rejectionReason: decision.status === "REJECTED" ? decision.rejectionReason : null,
          verifiedAt: decision.status === "APPROVED" ? now : null,
          reviewedBy: reviewerId,
          reviewedAt: now,
        },
        { transaction },
      );
      const action = decision.status === "APPROVED" ? "kyc.approved" : "kyc.rejected";
      const diff = changedFields(before, auditValues(row));
      await recordChange(userId, audited(caller, { userId, actorId: reviewerId, action, entityType: "kyc", entityId: userId, ...diff }), transaction);
      return row;
    });
    log.info({ userId, reviewerId, status: row.status }, "kyc reviewed");
    return recordOf(row, "staff");
  }

  return { submit, status, list, review };
}
