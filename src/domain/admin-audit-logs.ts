// The audit trail as staff browse it (AdminService.ListAuditLogs): user_audit_logs filtered
// by user, action, entity type and time, newest first. Pages are keyset on id (it grows with
// every row written), so rows written meanwhile sort before the first page and a later page
// neither repeats nor skips any. A user filter walks user_audit_logs_user_id_idx (user_id, id).
import { QueryTypes, type Sequelize } from "sequelize";
import { checkPageSize, decodePageToken, encodePageToken, filtersDigest } from "./admin-paging.js";
import { staffUserId, type Caller } from "./caller.js";
import { Violations } from "./errors.js";
import { auditEventOf, type AuditEventView, type AuditRow } from "./my-activity.js";
import { characterCount, hasControlCharacters, isUuid } from "./validation.js";

/** An audit row as staff see it: the owner's view plus whose row it is and who acted. */
export interface AuditLogRow extends AuditEventView {
  userId: string | null;
  actorId: string | null;
}

export interface ListAuditLogsInput {
  /** "" for any user. */
  userId: string;
  /** "" for any action. */
  action: string;
  /** "" for any entity type. */
  entityType: string;
  since?: Date;
  until?: Date;
  pageSize: number;
  pageToken: string;
}

export interface AuditLogPage {
  /** Newest first. */
  entries: AuditLogRow[];
  /** "" on the last page. */
  nextPageToken: string;
}

const NAME_MAX = 100;

function checkName(v: Violations, field: string, raw: string): string {
  const value = raw.trim();
  if (characterCount(value) > NAME_MAX) v.add(field, `must be at most ${NAME_MAX} characters`);
  else if (hasControlCharacters(value)) v.add(field, "must not contain control characters");
  return value;
}

/** A row as read: the owner's columns plus whose row it is and who acted. */
interface Row extends AuditRow {
  user_id: string | null;
  actor_id: string | null;
}

export interface AuditLogBrowser {
  /** Staff: audit rows by the filters, newest first. */
  list(caller: Caller, input: ListAuditLogsInput): Promise<AuditLogPage>;
}

export function createAuditLogBrowser(sequelize: Sequelize): AuditLogBrowser {
  return { list: (caller, input) => listAuditLogs(sequelize, caller, input) };
}

async function listAuditLogs(sequelize: Sequelize, caller: Caller, input: ListAuditLogsInput): Promise<AuditLogPage> {
  staffUserId(caller);
  const v = new Violations();
  const userId = input.userId.trim().toLowerCase();
  if (userId && !isUuid(userId)) v.add("user_id", "must be a UUID");
  const action = checkName(v, "action", input.action);
  const entityType = checkName(v, "entity_type", input.entityType);
  const validDate = (d: Date | undefined) => d === undefined || !Number.isNaN(d.getTime());
  if (!validDate(input.since)) v.add("since", "must be a valid time");
  if (!validDate(input.until)) v.add("until", "must be a valid time");
  else if (input.since && input.until && input.until.getTime() <= input.since.getTime()) v.add("until", "must be after since");
  const limit = checkPageSize(v, input.pageSize);
  v.throwIfAny();

  const digest = filtersDigest(["audit", userId, action, entityType, input.since?.toISOString() ?? null, input.until?.toISOString() ?? null]);
  const afterId = input.pageToken ? decodePageToken(input.pageToken, digest, [/^\d{1,19}$/])[0] : undefined;

  const bind: unknown[] = [];
  const param = (value: unknown) => `$${bind.push(value)}`;
  const conditions: string[] = [];
  if (userId) conditions.push(`user_id = ${param(userId)}::uuid`);
  if (action) conditions.push(`action = ${param(action)}`);
  if (entityType) conditions.push(`entity_type = ${param(entityType)}`);
  if (input.since) conditions.push(`created_at >= ${param(input.since)}::timestamptz`);
  if (input.until) conditions.push(`created_at < ${param(input.until)}::timestamptz`);
  if (afterId) conditions.push(`id < ${param(afterId)}::bigint`);
  const rows = await sequelize.query<Row>(
    `SELECT id::text AS id, user_id, actor_id, action, entity_type, entity_id, old_values, new_values, ip_address, user_agent, session_id, created_at
       FROM user_audit_logs ${conditions.length ? `WHERE ${conditions.join(" AND ")}` : ""}
      ORDER BY user_audit_logs.id DESC LIMIT ${param(limit + 1)}`, // the column, not the text alias ("8" > "17")
    { bind, type: QueryTypes.SELECT },
  );
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    entries: page.map((r) => ({ ...auditEventOf(r), userId: r.user_id, actorId: r.actor_id })),
    nextPageToken: rows.length > limit && last ? encodePageToken(digest, [last.id]) : "",
  };
}
