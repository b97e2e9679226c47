// ExportAccountData (DESIGN §10, GDPR Art. 20): everything the service holds about the caller,
// and nothing about anyone else (every read is keyed by the caller's id). What is withheld even
// from the owner: the full KYC document number (its last 4 characters only) and the devices'
// FCM tokens (masked: a push credential, not personal data the user gave). The points ledger
// and the audit trail are read whole, a thousand rows at a time. Rate-limited per user
// (ACCOUNT_EXPORTS_PER_HOUR): an export reads every table of the account.
import type { RedisClient } from "../store/redis.js";
import type { Sequelize } from "sequelize";
import { queryPrepared, type Models } from "../store/index.js";
import type { DocumentTypeValue, KycStatusValue } from "../store/models/user-kyc.js";
import { callerUserId, type Caller } from "./caller.js";
import { deviceOf, type Device } from "./devices.js";
import { exhausted, unauthenticated } from "./errors.js";
import { AUDIT_ROW_COLUMNS, auditEventOf, type AuditEventView, type AuditRow } from "./my-activity.js";
import type { LedgerEntry, PointsDomain, Wallet } from "./points.js";
import type { Profile, ProfileDomain } from "./profiles.js";
import { createRateLimiter } from "./rate-limit.js";
import { sessionViewOf, type SessionView } from "./sessions.js";
import { loadUsers, type UserView } from "./users.js";

export interface KycExport {
  status: KycStatusValue;
  documentType: DocumentTypeValue | null;
  /** Never the whole number. */
  documentNumberLast4: string | null;
  documentFrontUrl: string | null;
  documentBackUrl: string | null;
  rejectionReason: string | null;
  submittedAt: Date | null;
  verifiedAt: Date | null;
  reviewedAt: Date | null;
}

export interface AccountExport {
  user: UserView;
  profile: Profile;
  kyc: KycExport;
  /** fcmToken masked. */
  devices: Device[];
  sessions: SessionView[];
  wallet: Wallet;
  ledger: LedgerEntry[];
  auditEvents: AuditEventView[];
  exportedAt: Date;
}

export interface AccountExportDeps {
  sequelize: Sequelize;
  models: Models;
  redis: RedisClient;
  profiles: Pick<ProfileDomain, "get">;
  points: Pick<PointsDomain, "getWallet" | "listTransactions">;
  exportsPerHour: number;
}

const CHUNK = 1000;
const HOUR = 3600;

/** "…" and the last 6 characters: enough for the owner to tell tokens apart, useless to send pushes with. */
export const maskFcmToken = (token: string | null): string | null => (token ? `…${token.slice(-6)}` : null);

export type ExportAccountData = (caller: Caller) => Promise<AccountExport>;

export function createAccountExport({ sequelize, models, redis, profiles, points, exportsPerHour }: AccountExportDeps): ExportAccountData {
  const limiter = createRateLimiter(redis);

  async function wholeLedger(caller: Caller): Promise<LedgerEntry[]> {
    const all: LedgerEntry[] = [];
    let pageToken = "";
    do {
      const page = await points.listTransactions(caller, { pageSize: 100, pageToken });
      all.push(...page.transactions);
      pageToken = page.nextPageToken;
    } while (pageToken);
    return all;
  }

  async function wholeAudit(userId: string): Promise<AuditEventView[]> {
    const all: AuditEventView[] = [];
    let before: string | null = null;
    for (;;) {
      const rows: AuditRow[] = await queryPrepared<AuditRow>(
        sequelize,
        `SELECT ${AUDIT_ROW_COLUMNS} FROM user_audit_logs WHERE user_id = $1 AND ($2::bigint IS NULL OR id < $2::bigint) ORDER BY id DESC LIMIT $3`,
        [userId, before, CHUNK],
      );
      all.push(...rows.map(auditEventOf));
      if (rows.length < CHUNK) return all;
      before = String(rows.at(-1)!.id);
    }
  }

  return async (caller) => {
    const userId = callerUserId(caller);
    const limit = await limiter.hit(`account-export:${userId}`, exportsPerHour, HOUR);
    if (!limit.allowed) throw exhausted(`at most ${exportsPerHour} exports per hour, try again later`, limit.retryAfterSeconds);

    const user = (await loadUsers(sequelize, [userId])).get(userId);
    if (!user) throw unauthenticated("Session has ended");
    const [profile, kycRow, deviceRows, sessionRows, wallet, ledger, auditEvents] = await Promise.all([
      profiles.get(caller),
      models.UserKyc.findByPk(userId),
      models.UserDevice.findAll({ where: { userId }, order: [["createdAt", "DESC"], ["id", "ASC"]] }),
      models.Session.findAll({ where: { userId }, order: [["createdAt", "DESC"], ["id", "ASC"]] }),
      points.getWallet(caller),
      wholeLedger(caller),
      wholeAudit(userId),
    ]);
    return {
      user,
      profile,
      kyc: {
        status: kycRow?.status ?? "NOT_SUBMITTED",
        documentType: kycRow?.documentType ?? null,
        documentNumberLast4: kycRow?.documentNumberLast4 ?? (kycRow?.documentNumber ? kycRow.documentNumber.slice(-4) : null),
        documentFrontUrl: kycRow?.documentFrontUrl ?? null,
        documentBackUrl: kycRow?.documentBackUrl ?? null,
        rejectionReason: kycRow?.rejectionReason ?? null,
        submittedAt: kycRow?.submittedAt ?? null,
        verifiedAt: kycRow?.verifiedAt ?? null,
        reviewedAt: kycRow?.reviewedAt ?? null,
      },
      devices: deviceRows.map((row) => ({ ...deviceOf(row), fcmToken: maskFcmToken(row.fcmToken ?? null) })),
      sessions: sessionRows.map((s) => sessionViewOf(s, caller.principal?.sessionId)),
      wallet,
      ledger,
      auditEvents,
      exportedAt: new Date(),
    };
  };
}
