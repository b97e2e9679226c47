// ListMyActivity (DESIGN §10): the caller's security events from the audit trail, newest first.
// Pages are keyed by the audit row's id (a bigserial: rows written later have larger ids), so
// a page token stays valid and no row repeats or goes missing while new events arrive — they
// land before the first page. Only the caller's own rows are ever read (user_id = caller).
import type { Sequelize } from "sequelize";
import { queryPrepared } from "../store/index.js";
import { callerUserId, type Caller } from "./caller.js";
import { Violations } from "./errors.js";

/** One audit row as the account's owner sees it. */
export interface AuditEventView {
  id: string;
  action: string;
  entityType: string;
  entityId: string | null;
  oldValues: Record<string, unknown> | null;
  newValues: Record<string, unknown> | null;
  ipAddress: string | null;
  userAgent: string | null;
  sessionId: string | null;
  createdAt: Date;
}

/** The actions that are security events: sign-ins, token reuse, sign-outs and revocations, identifier, device, KYC and account changes. */
export const SECURITY_ACTIONS: readonly string[] = [
  "user.registered",
  "user.login",
  "session.reuse_detected",
  "user.logout",
  "session.revoked",
  "sessions.revoked_all",
  "identifier.changed",
  "device.registered",
  "device.deactivated",
  "kyc.submitted",
  "account.deletion_requested",
  "account.restored",
  "user.deactivated",
];

export interface ActivityPage {
  events: AuditEventView[];
  /** Empty on the last page. */
  nextPageToken: string;
}

export interface AuditRow {
  id: string;
  action: string;
  entity_type: string;
  entity_id: string | null;
  old_values: Record<string, unknown> | null;
  new_values: Record<string, unknown> | null;
  ip_address: string | null;
  user_agent: string | null;
  session_id: string | null;
  created_at: Date;
}

export const AUDIT_ROW_COLUMNS = "id, action, entity_type, entity_id, old_values, new_values, ip_address, user_agent, session_id, created_at";

export const auditEventOf = (r: AuditRow): AuditEventView => ({
  id: String(r.id),
  action: r.action,
  entityType: r.entity_type,
  entityId: r.entity_id,
  oldValues: r.old_values,
  newValues: r.new_values,
  ipAddress: r.ip_address,
  userAgent: r.user_agent,
  sessionId: r.session_id,
  createdAt: r.created_at,
});

const DEFAULT_PAGE_SIZE = 20;
const MAX_PAGE_SIZE = 100;
const TOKEN = /^a([1-9][0-9]{0,18})$/;

/** The opaque page token: the id of the last event of the page, tagged so other tokens do not pass. */
const encodeToken = (id: string) => Buffer.from(`a${id}`).toString("base64url");

function decodeToken(token: string): string | null {
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(token)) return null;
  return TOKEN.exec(Buffer.from(token, "base64url").toString("latin1"))?.[1] ?? null;
}

export interface MyActivity {
  list(caller: Caller, page: { pageSize: number; pageToken: string }): Promise<ActivityPage>;
}

export function createMyActivity({ sequelize }: { sequelize: Sequelize }): MyActivity {
  return {
    async list(caller, { pageSize, pageToken }) {
      const userId = callerUserId(caller);
      const v = new Violations();
      if (!Number.isInteger(pageSize) || pageSize < 0 || pageSize > MAX_PAGE_SIZE) v.add("page_size", `must be from 1 to ${MAX_PAGE_SIZE}`);
      const before = pageToken ? decodeToken(pageToken) : undefined;
      if (before === null) v.add("page_token", "invalid page token");
      v.throwIfAny();
      const limit = pageSize || DEFAULT_PAGE_SIZE;
      const rows = await queryPrepared<AuditRow>(
        sequelize,
        `SELECT ${AUDIT_ROW_COLUMNS} FROM user_audit_logs
          WHERE user_id = $1 AND action = ANY($2::text[]) AND ($3::bigint IS NULL OR id < $3::bigint)
          ORDER BY id DESC LIMIT $4`,
        [userId, SECURITY_ACTIONS, before ?? null, limit + 1],
      );
      const page = rows.slice(0, limit);
      return {
        // The values stay in the export: the activity list says what happened, where and when.
        events: page.map((r) => ({ ...auditEventOf(r), oldValues: null, newValues: null })),
        nextPageToken: rows.length > limit ? encodeToken(String(page.at(-1)!.id)) : "",
      };
    },
  };
}
