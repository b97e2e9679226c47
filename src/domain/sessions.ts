// Sessions and their tokens (DESIGN §4): opening a session, refresh with rotation, the grace
// window and reuse detection, logout, listing and revoking, and the liveness check the auth
// interceptor runs on every protected call (exact on every call; the checks of concurrent
// calls share one query).
import type { RedisClient } from "../store/redis.js";
import { randomUUID } from "node:crypto";
import type { Sequelize, Transaction } from "sequelize";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import { withStoreFallback } from "../store/store-errors.js";
import { queryPrepared, runTransaction, writeAudit, writeChangeWithAudit, writeKeyedChangeWithAudit, type Models, type Session } from "../store/index.js";
import { audited, type AuditEntry } from "./audit.js";
import { createBatchLoader } from "./batch-loader.js";
import type { Caller, Principal } from "./caller.js";
import type { DenyList } from "./deny-list.js";
import type { DeviceInfoInput } from "./device-info.js";
import { invalid, notFound, unauthenticated } from "./errors.js";
import { formatRefreshToken, isGenuine, newSeed, openFromGrace, parseRefreshToken, sealForGrace, type ParsedRefreshToken } from "./refresh-tokens.js";
import { subkey } from "./server-secret.js";
import { USER_VIEW_COLUMNS, viewOf, type UserRow, type UserView } from "./users.js";
import type { TokenIssuer } from "./tokens.js";

export interface TokenPair {
  sessionId: string;
  accessToken: string;
  refreshToken: string;
  /** Seconds until the access token expires. */
  expiresIn: number;
}

export interface SessionView {
  sessionId: string;
  current: boolean;
  ipAddress: string;
  userAgent: string;
  device: DeviceInfoInput;
  createdAt: Date;
  lastUsedAt: Date;
  expiresAt: Date;
}

export interface SessionDeps {
  sequelize: Sequelize;
  models: Models;
  redis: RedisClient;
  issuer: TokenIssuer;
  denyList: DenyList;
  secret: Buffer;
  config: Pick<Config, "jwt">;
  logger: Logger;
}

export interface Sessions {
  /** Opens a session for a user inside the caller's transaction (Register: the account is created in it). */
  open(t: Transaction, user: { id: string; isStaff: boolean }, caller: Caller, device: DeviceInfoInput): Promise<TokenPair>;
  /**
   * Signs an existing account in (Login): a new session, the account's last_login and the
   * audit rows session.created and user.login (`via`: the kind of identifier it proved), in one
   * statement with the sign-ins of the same moment. Undefined when the account is no longer
   * active (deactivated or deleted since the caller read it).
   */
  signIn(user: { id: string; isStaff: boolean }, caller: Caller, device: DeviceInfoInput, via: string): Promise<TokenPair | undefined>;
  refresh(caller: Caller, refreshToken: string): Promise<Omit<TokenPair, "sessionId">>;
  /** Ends the caller's session (and the one of refreshToken when it is the caller's too). */
  logout(caller: Caller & { principal: Principal }, refreshToken?: string): Promise<void>;
  list(caller: Caller & { principal: Principal }): Promise<SessionView[]>;
  revoke(caller: Caller & { principal: Principal }, sessionId: string): Promise<void>;
  /**
   * Ends every live session of the caller (all but the calling one when keepCurrent), with
   * one audit row sessions.revoked_all; answers how many were ended. Their tokens are refused
   * at their next call on every instance (the session check reads the database).
   */
  revokeAll(caller: Caller & { principal: Principal }, keepCurrent: boolean): Promise<number>;
  /**
   * For the auth interceptor: the session is live and the user active; says whether the user
   * is staff, and gives the user's account (read in the same query) to the call.
   */
  checkPrincipal(principal: Principal): Promise<{ staff: boolean; account?: UserView }>;
}

/** A session row as its user sees it; `current` when it is the session `currentId`. */
export function sessionViewOf(s: Session, currentId: string | undefined): SessionView {
  return {
    sessionId: s.id,
    current: s.id === currentId,
    ipAddress: s.ipAddress ?? "",
    userAgent: s.userAgent ?? "",
    device: { deviceId: s.deviceId ?? undefined, deviceType: s.deviceType ?? undefined, deviceName: s.deviceName ?? undefined, appVersion: s.appVersion ?? undefined, osVersion: s.osVersion ?? undefined },
    createdAt: s.createdAt,
    lastUsedAt: s.lastUsedAt,
    expiresAt: s.expiresAt,
  };
}

/**
 * Ends every live session of `userId` but `except`, inside `transaction`; answers their ids.
 * Account-wide ends (RevokeAllSessions, DeleteAccount) share it.
 */
export async function endUserSessions(sequelize: Sequelize, transaction: Transaction, userId: string, reason: string, except: string | null = null): Promise<string[]> {
  const rows = await queryPrepared<{ id: string }>(
    sequelize,
    `UPDATE sessions SET revoked_at = now(), revoked_reason = $2
      WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now() AND id IS DISTINCT FROM $3::uuid RETURNING id`,
    [userId, reason, except],
    transaction,
  );
  return rows.map((r) => r.id);
}

/** The live sessions of `userId`, most recently used first; `current` marks the caller's own. */
export async function liveSessionsOf(models: Pick<Models, "Session">, userId: string, currentSessionId?: string): Promise<SessionView[]> {
  const rows = await models.Session.findAll({
    where: { userId, revokedAt: null },
    order: [["lastUsedAt", "DESC"], ["id", "ASC"]],
  });
  const now = Date.now();
  return rows.filter((s) => s.expiresAt.getTime() > now).map((s) => sessionViewOf(s, currentSessionId));
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const badRefresh = () => unauthenticated("Invalid or expired refresh token");
const graceKey = (sessionId: string, generation: number) => `refresh-grace:{${sessionId}}:${generation}`;

type RefreshedPair = Omit<TokenPair, "sessionId">;

/**
 * The items sorted by an id: rows that batched statements lock go in this order, so that
 * concurrent statements lock the rows they share in one order (no deadlock).
 */
function inIdOrder<T>(items: Iterable<T>, id: (item: T) => string): T[] {
  return [...items].sort((a, b) => (id(a) < id(b) ? -1 : id(a) > id(b) ? 1 : 0));
}

/** The columns a new session is written with (refresh_generation starts at 0). */
const OPENED_COLUMNS = "id, user_id, refresh_seed, refresh_generation, device_id, device_type, device_name, app_version, os_version, ip_address, user_agent, last_used_at, expires_at";

/** A session about to be opened, with the audit row that records it. */
interface Opening {
  id: string;
  userId: string;
  seed: string;
  /** device_id, device_type, device_name, app_version, os_version */
  device: Array<string | null>;
  ip: string | null;
  userAgent: string | null;
  created: AuditEntry;
}

/** A refresh's move of its session to the next generation, with the audit row recording it. */
interface Rotation {
  session: RefreshRow;
  ip: string | null;
  userAgent: string | null;
  audit: AuditEntry;
}

/** What a refresh reads: the session row and its user's flags. */
interface RefreshRow {
  id: string;
  user_id: string;
  refresh_seed: string;
  refresh_generation: number;
  rotated_at: Date | null;
  expires_at: Date;
  revoked_at: Date | null;
  ip_address: string | null;
  user_agent: string | null;
  is_active: boolean;
  is_staff: boolean;
}

export function createSessions({ sequelize, models, redis, issuer, denyList, secret, config, logger }: SessionDeps): Sessions {
  const log = logger.child({ component: "sessions" });
  const refreshKey = subkey(secret, "identity/refresh-token/v1");
  const { accessTtlSeconds, refreshTtlSeconds, refreshGraceSeconds } = config.jwt;
  const expiry = () => new Date(Date.now() + refreshTtlSeconds * 1000);
  const liveSession = createBatchLoader(async (ids: string[]) => {
    const rows = await queryPrepared<UserRow & { session_id: string }>(
      sequelize,
      `SELECT s.id AS session_id, ${USER_VIEW_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id
        WHERE s.id = ANY($1::uuid[]) AND s.revoked_at IS NULL AND s.expires_at > now()`,
      [ids],
    );
    // A live session with its user's account.
    return new Map(rows.map((r): [string, UserView] => [r.session_id, viewOf(r)]));
  });

  function issue(userId: string, isStaff: boolean, session: Pick<Session, "id" | "refreshGeneration" | "refreshSeed">): Omit<TokenPair, "sessionId"> {
    const access = issuer.issueAccess({ sub: userId, sid: session.id, roles: isStaff ? ["staff"] : [], kind: "user" });
    return {
      accessToken: access.token,
      refreshToken: formatRefreshToken(refreshKey, session.id, session.refreshGeneration, session.refreshSeed),
      expiresIn: accessTtlSeconds,
    };
  }

  // Concurrent refreshes read their sessions in one query (the session ids are UUIDs: parseRefreshToken checked them).
  const refreshRows = createBatchLoader(async (ids: string[]) => {
    const rows = await queryPrepared<RefreshRow>(
      sequelize,
      `SELECT s.id, s.user_id, s.refresh_seed, s.refresh_generation, s.rotated_at, s.expires_at, s.revoked_at, s.ip_address, s.user_agent, u.is_active, u.is_staff
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ANY($1::uuid[])`,
      [ids],
    );
    return new Map(rows.map((r): [string, RefreshRow] => [r.id, r]));
  });

  /** The first token pair of a session just opened. */
  function pairOf(user: { id: string; isStaff: boolean }, opening: Opening): TokenPair {
    return { sessionId: opening.id, ...issue(user.id, user.isStaff, { id: opening.id, refreshGeneration: 0, refreshSeed: opening.seed }) };
  }

  /** A session about to be opened: its id is chosen here so that its audit rows can name it in the same statement. */
  function newOpening(user: { id: string }, caller: Caller, device: DeviceInfoInput): Opening {
    const id = randomUUID();
    const { deviceId = null, deviceType = null, deviceName = null, appVersion = null, osVersion = null } = device;
    return {
      id,
      userId: user.id,
      seed: newSeed(),
      device: [deviceId, deviceType, deviceName, appVersion, osVersion],
      ip: caller.meta.ip || null,
      userAgent: caller.meta.userAgent || null,
      created: audited(caller, { userId: user.id, action: "session.created", entityType: "session", entityId: id, sessionId: id, newValues: { device_id: deviceId, device_type: deviceType } }),
    };
  }

  // Concurrent sign-ins go out as one statement: the sessions (of active accounts only), the
  // accounts' last_login, and the audit rows of the sessions opened. Rows are sent in id order
  // so that concurrent statements lock the users they share in the same order.
  const signIns = createBatchLoader(async (batch: Array<{ opening: Opening; login: AuditEntry }>) => {
    const rows = inIdOrder(batch, (r) => r.opening.userId);
    const o = rows.map((r) => r.opening);
    const column = (i: number) => o.map((x) => x.device[i]);
    const now = new Date();
    const opened = await writeKeyedChangeWithAudit(sequelize, undefined, {
      sql: `INSERT INTO sessions (${OPENED_COLUMNS})
            SELECT v.id, v.user_id, v.seed, 0, v.device_id, v.device_type, v.device_name, v.app_version, v.os_version, v.ip, v.user_agent, $11, $12
              FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
                   AS v(id, user_id, seed, device_id, device_type, device_name, app_version, os_version, ip, user_agent)
              JOIN users u ON u.id = v.user_id AND u.is_active
         RETURNING id AS key, user_id`,
      also: [`UPDATE users u SET last_login = $11, updated_at = $11 FROM unnest($13::uuid[]) AS w(id) WHERE u.id = w.id AND w.id IN (SELECT user_id FROM c)`],
      bind: [o.map((x) => x.id), o.map((x) => x.userId), o.map((x) => x.seed), column(0), column(1), column(2), column(3), column(4), o.map((x) => x.ip), o.map((x) => x.userAgent), now, expiry(), [...new Set(o.map((x) => x.userId))]],
      audit: rows.flatMap((r) => [
        { key: r.opening.id, entry: r.opening.created },
        { key: r.opening.id, entry: r.login },
      ]),
    });
    return new Map(batch.map((r): [(typeof batch)[number], boolean] => [r, opened.has(r.opening.id)]));
  });

  // Concurrent rotations go out as one guarded UPDATE with their audit rows (one round trip,
  // one commit). One rotation per session per statement: of two in a batch for one session, the
  // second answers "not rotated" and judges its token again, like the loser of any race.
  const rotation = createBatchLoader(async (batch: Rotation[]) => {
    const chosen = new Map<string, Rotation>();
    for (const r of batch) if (!chosen.has(r.session.id)) chosen.set(r.session.id, r);
    // In id order, so that concurrent statements lock the sessions they share in the same order.
    const rows = inIdOrder(chosen.values(), (r) => r.session.id);
    const now = new Date();
    const rotated = await writeKeyedChangeWithAudit(sequelize, undefined, {
      sql: `UPDATE sessions s SET refresh_generation = v.presented + 1, rotated_at = $3, last_used_at = $3, expires_at = $4, ip_address = v.ip, user_agent = v.user_agent
              FROM unnest($1::uuid[], $2::int[], $5::text[], $6::text[]) AS v(id, presented, ip, user_agent)
             WHERE s.id = v.id AND s.refresh_generation = v.presented AND s.revoked_at IS NULL AND s.expires_at > $3
         RETURNING s.id AS key`,
      bind: [rows.map((r) => r.session.id), rows.map((r) => r.session.refresh_generation), now, expiry(), rows.map((r) => r.ip), rows.map((r) => r.userAgent)],
      audit: rows.map((r) => ({ key: r.session.id, entry: r.audit })),
    });
    return new Map(batch.map((r): [Rotation, boolean] => [r, chosen.get(r.session.id) === r && rotated.has(r.session.id)]));
  });

  /** The session of a presented refresh token with its user's flags, when the token is genuine and the session usable. */
  async function readForRefresh(parsed: ParsedRefreshToken): Promise<RefreshRow> {
    const session = await refreshRows(parsed.sessionId);
    if (!session || !isGenuine(refreshKey, parsed, session.refresh_seed)) throw badRefresh();
    if (session.revoked_at || session.expires_at.getTime() <= Date.now() || !session.is_active) throw badRefresh();
    return session;
  }

  /**
   * The pair cached for a rotated token during the grace window (readable only with that
   * token); undefined when there is none, or Redis is unreachable (the caller then derives
   * the pair from the session row: see refresh()).
   */
  async function cachedPair(sessionId: string, generation: number, presented: string): Promise<RefreshedPair | undefined> {
    const sealed = await withStoreFallback(() => redis.get(graceKey(sessionId, generation)), null);
    return sealed ? openFromGrace<RefreshedPair>(presented, sealed) : undefined;
  }

  /**
   * Rotates the session from the presented (current) generation to the next, in one guarded
   * statement with its audit row: of concurrent refreshes with one token, exactly one matches
   * the generation and the others get undefined. Every one of them answers with the same pair:
   * the first to reach the grace cache (SET NX) decides it, and the cache is written before
   * the rotation, so a refresh that sees the rotation also finds the pair.
   */
  async function rotate(caller: Caller, session: RefreshRow, presented: string): Promise<RefreshedPair | undefined> {
    const generation = session.refresh_generation + 1;
    let pair = issue(session.user_id, session.is_staff, { id: session.id, refreshGeneration: generation, refreshSeed: session.refresh_seed });
    if (refreshGraceSeconds > 0) {
      const key = graceKey(session.id, session.refresh_generation);
      // Unreachable Redis: no cache; a retry within the window gets its pair from the session row.
      const claimed = await withStoreFallback(() => redis.set(key, sealForGrace(presented, pair), "EX", refreshGraceSeconds, "NX"), "OK");
      if (!claimed) pair = (await cachedPair(session.id, session.refresh_generation, presented)) ?? pair;
    }
    const rotated = await rotation({
      session,
      ip: caller.meta.ip || session.ip_address,
      userAgent: caller.meta.userAgent || session.user_agent,
      audit: audited(caller, { userId: session.user_id, action: "session.refreshed", entityType: "session", entityId: session.id, sessionId: session.id, newValues: { generation } }),
    });
    return rotated ? pair : undefined;
  }

  async function endSession(t: Transaction, session: Session, reason: string): Promise<void> {
    await session.update({ revokedAt: new Date(), revokedReason: reason }, { transaction: t });
  }

  return {
    async open(t, user, caller, device) {
      const opening = newOpening(user, caller, device);
      await writeChangeWithAudit(
        sequelize,
        t,
        `INSERT INTO sessions (${OPENED_COLUMNS}) VALUES ($1, $2, $3, 0, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
        [opening.id, user.id, opening.seed, ...opening.device, opening.ip, opening.userAgent, new Date(), expiry()],
        [opening.created],
      );
      return pairOf(user, opening);
    },

    async signIn(user, caller, device, via) {
      const opening = newOpening(user, caller, device);
      const login = audited(caller, { userId: user.id, action: "user.login", entityType: "user", entityId: user.id, sessionId: opening.id, newValues: { via } });
      if (!(await signIns({ opening, login }))) return undefined;
      return pairOf(user, opening);
    },

    async refresh(caller, refreshToken) {
      const parsed = typeof refreshToken === "string" ? parseRefreshToken(refreshToken.trim()) : undefined;
      if (!parsed) {
        if (!refreshToken) throw invalid([{ field: "refresh_token", description: "required" }]);
        throw badRefresh();
      }
      let session = await readForRefresh(parsed);
      if (parsed.generation === session.refresh_generation) {
        const pair = await rotate(caller, session, refreshToken);
        if (pair) return pair;
        // A concurrent refresh of the same token rotated first, or the session ended meanwhile:
        // judge the token again against the row as it is now.
        session = await readForRefresh(parsed);
      }
      const current = session.refresh_generation;
      if (parsed.generation > current) throw badRefresh();
      const withinGrace = parsed.generation === current - 1 && session.rotated_at !== null && Date.now() - session.rotated_at.getTime() <= refreshGraceSeconds * 1000;
      if (withinGrace) {
        // The pair the rotation handed out, from the cache; if Redis lost it (a restart without
        // persistence, an eviction) or cannot be reached, PostgreSQL still proves this token
        // was rotated moments ago: answer with the current generation's refresh token (derived
        // from the seed, so the very token the rotation returned) and a new access token.
        const pair = await cachedPair(session.id, parsed.generation, refreshToken);
        return pair ?? issue(session.user_id, session.is_staff, { id: session.id, refreshGeneration: current, refreshSeed: session.refresh_seed });
      }
      // A genuine token of an earlier generation, outside the grace window: someone else holds
      // a copy. End the session so neither copy works any longer.
      await writeChangeWithAudit(
        sequelize,
        undefined,
        "UPDATE sessions SET revoked_at = $2, revoked_reason = 'refresh_token_reuse' WHERE id = $1 AND revoked_at IS NULL",
        [session.id, new Date()],
        [audited(caller, { userId: session.user_id, action: "session.reuse_detected", entityType: "session", entityId: session.id, sessionId: session.id, newValues: { presented_generation: parsed.generation, current_generation: current } })],
      );
      log.warn({ sessionId: parsed.sessionId, requestId: caller.meta.requestId }, "refresh token reuse detected: session revoked");
      throw unauthenticated("Refresh token reuse detected; the session has been ended");
    },

    async logout(caller, refreshToken) {
      const { principal } = caller;
      const other = refreshToken ? parseRefreshToken(refreshToken.trim()) : undefined;
      await runTransaction(sequelize, caller.signal, async (t) => {
        const ids = [principal.sessionId, other?.sessionId].filter((id): id is string => !!id);
        const sessions = await models.Session.findAll({ where: { id: [...new Set(ids)], userId: principal.subject }, transaction: t, lock: t.LOCK.UPDATE, order: [["id", "ASC"]] });
        for (const session of sessions) {
          // Another session is ended only on proof that the caller holds its refresh token.
          if (session.id !== principal.sessionId && !(other && isGenuine(refreshKey, other, session.refreshSeed))) continue;
          if (!session.revokedAt) await endSession(t, session, "logout");
          await writeAudit(models, audited(caller, { userId: principal.subject, action: "user.logout", entityType: "session", entityId: session.id, sessionId: session.id }), t);
        }
      });
      await denyList.deny(principal.jti, principal.expiresAt);
    },

    async list(caller) {
      return liveSessionsOf(models, caller.principal.subject, caller.principal.sessionId);
    },

    async revoke(caller, sessionId) {
      if (!sessionId) throw invalid([{ field: "session_id", description: "required" }]);
      const missing = () => notFound("No such active session");
      if (!UUID.test(sessionId)) throw missing();
      await runTransaction(sequelize, caller.signal, async (t) => {
        const session = await models.Session.findOne({ where: { id: sessionId, userId: caller.principal.subject, revokedAt: null }, transaction: t, lock: t.LOCK.UPDATE });
        if (!session || session.expiresAt.getTime() <= Date.now()) throw missing();
        await endSession(t, session, "revoked_by_user");
        await writeAudit(models, audited(caller, { userId: caller.principal.subject, action: "session.revoked", entityType: "session", entityId: session.id }), t);
      });
      if (sessionId === caller.principal.sessionId) await denyList.deny(caller.principal.jti, caller.principal.expiresAt);
    },

    async revokeAll(caller, keepCurrent) {
      const { principal } = caller;
      const ended = await runTransaction(sequelize, caller.signal, async (t) => {
        const ids = await endUserSessions(sequelize, t, principal.subject, "revoked_all_by_user", keepCurrent ? (principal.sessionId ?? null) : null);
        await writeAudit(
          models,
          audited(caller, { userId: principal.subject, action: "sessions.revoked_all", entityType: "session", entityId: null, newValues: { revoked_count: ids.length, keep_current: keepCurrent } }),
          t,
        );
        return ids;
      });
      if (!keepCurrent) await denyList.deny(principal.jti, principal.expiresAt);
      return ended.length;
    },

    async checkPrincipal(principal) {
      if (principal.kind === "service") return { staff: false };
      // Session ids are UUIDs: anything else matches no session, and must not reach the shared
      // query (PostgreSQL would refuse it, failing every check of the batch).
      if (!principal.sessionId || !UUID.test(principal.sessionId)) throw unauthenticated();
      const account = await liveSession(principal.sessionId);
      if (account?.id !== principal.subject || !account.isActive) throw unauthenticated("Session has ended");
      return { staff: account.isStaff, account };
    },
  };
}
