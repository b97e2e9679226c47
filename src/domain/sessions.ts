// Sessions and their tokens (DESIGN §4): opening a session, refresh with rotation, the grace
// window and reuse detection, logout, listing and revoking, and the liveness check the auth
// interceptor runs on every protected call.
import type { Redis } from "ioredis";
import { QueryTypes, type Sequelize, type Transaction } from "sequelize";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import { writeAudit, type Models, type Session } from "../store/index.js";
import { audited } from "./audit.js";
import type { Caller, Principal } from "./caller.js";
import type { DenyList } from "./deny-list.js";
import type { DeviceInfoInput } from "./device-info.js";
import { invalid, notFound, unauthenticated } from "./errors.js";
import { formatRefreshToken, isGenuine, newSeed, openFromGrace, parseRefreshToken, sealForGrace } from "./refresh-tokens.js";
import { subkey } from "./server-secret.js";
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
  redis: Redis;
  issuer: TokenIssuer;
  denyList: DenyList;
  secret: Buffer;
  config: Pick<Config, "jwt">;
  logger: Logger;
}

export interface Sessions {
  /** Opens a session for a user inside the caller's transaction (Register, Login). */
  open(t: Transaction, user: { id: string; isStaff: boolean }, caller: Caller, device: DeviceInfoInput): Promise<TokenPair>;
  refresh(caller: Caller, refreshToken: string): Promise<Omit<TokenPair, "sessionId">>;
  /** Ends the caller's session (and the one of refreshToken when it is the caller's too). */
  logout(caller: Caller & { principal: Principal }, refreshToken?: string): Promise<void>;
  list(caller: Caller & { principal: Principal }): Promise<SessionView[]>;
  revoke(caller: Caller & { principal: Principal }, sessionId: string): Promise<void>;
  /** For the auth interceptor: the session is live and the user active; says whether the user is staff. */
  checkPrincipal(principal: Principal): Promise<{ staff: boolean }>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const badRefresh = () => unauthenticated("Invalid or expired refresh token");
const graceKey = (sessionId: string, generation: number) => `refresh-grace:{${sessionId}}:${generation}`;

type RefreshOutcome = { pair: Omit<TokenPair, "sessionId"> } | { reuse: true };

export function createSessions({ sequelize, models, redis, issuer, denyList, secret, config, logger }: SessionDeps): Sessions {
  const log = logger.child({ component: "sessions" });
  const refreshKey = subkey(secret, "identity/refresh-token/v1");
  const { accessTtlSeconds, refreshTtlSeconds, refreshGraceSeconds } = config.jwt;
  const expiry = () => new Date(Date.now() + refreshTtlSeconds * 1000);

  function issue(userId: string, isStaff: boolean, session: Session): Omit<TokenPair, "sessionId"> {
    const access = issuer.issueAccess({ sub: userId, sid: session.id, roles: isStaff ? ["staff"] : [], kind: "user" });
    return {
      accessToken: access.token,
      refreshToken: formatRefreshToken(refreshKey, session.id, session.refreshGeneration, session.refreshSeed),
      expiresIn: accessTtlSeconds,
    };
  }

  async function endSession(t: Transaction, session: Session, reason: string): Promise<void> {
    await session.update({ revokedAt: new Date(), revokedReason: reason }, { transaction: t });
  }

  return {
    async open(t, user, caller, device) {
      const now = new Date();
      const session = await models.Session.create(
        {
          userId: user.id,
          refreshSeed: newSeed(),
          deviceId: device.deviceId ?? null,
          deviceType: device.deviceType ?? null,
          deviceName: device.deviceName ?? null,
          appVersion: device.appVersion ?? null,
          osVersion: device.osVersion ?? null,
          ipAddress: caller.meta.ip || null,
          userAgent: caller.meta.userAgent || null,
          lastUsedAt: now,
          expiresAt: expiry(),
        },
        { transaction: t },
      );
      await writeAudit(models, audited(caller, { userId: user.id, action: "session.created", entityType: "session", entityId: session.id, sessionId: session.id, newValues: { device_id: device.deviceId ?? null, device_type: device.deviceType ?? null } }), t);
      return { sessionId: session.id, ...issue(user.id, user.isStaff, session) };
    },

    async refresh(caller, refreshToken) {
      const parsed = typeof refreshToken === "string" ? parseRefreshToken(refreshToken.trim()) : undefined;
      if (!parsed) {
        if (!refreshToken) throw invalid([{ field: "refresh_token", description: "required" }]);
        throw badRefresh();
      }
      const outcome = await sequelize.transaction(async (t): Promise<RefreshOutcome> => {
        // The row lock serialises concurrent refreshes of one session: the second waits, then
        // sees the rotation of the first and is answered from the grace cache.
        const session = await models.Session.findByPk(parsed.sessionId, { transaction: t, lock: t.LOCK.UPDATE });
        if (!session || !isGenuine(refreshKey, parsed, session.refreshSeed)) throw badRefresh();
        if (session.revokedAt || session.expiresAt.getTime() <= Date.now()) throw badRefresh();
        const user = await models.User.findByPk(session.userId, { transaction: t, attributes: ["id", "isActive", "isStaff"] });
        if (!user?.isActive) throw badRefresh();

        if (parsed.generation === session.refreshGeneration) {
          const now = new Date();
          await session.update(
            { refreshGeneration: session.refreshGeneration + 1, rotatedAt: now, lastUsedAt: now, expiresAt: expiry(), ipAddress: caller.meta.ip || session.ipAddress, userAgent: caller.meta.userAgent || session.userAgent },
            { transaction: t },
          );
          const pair = issue(user.id, user.isStaff, session);
          // Cached before the commit: a concurrent retry blocked on the row lock finds it.
          if (refreshGraceSeconds > 0) await redis.set(graceKey(session.id, parsed.generation), sealForGrace(refreshToken, pair), "EX", refreshGraceSeconds);
          await writeAudit(models, audited(caller, { userId: user.id, action: "session.refreshed", entityType: "session", entityId: session.id, sessionId: session.id, newValues: { generation: session.refreshGeneration } }), t);
          return { pair };
        }
        if (parsed.generation > session.refreshGeneration) throw badRefresh();

        const withinGrace =
          parsed.generation === session.refreshGeneration - 1 && session.rotatedAt !== null && Date.now() - session.rotatedAt.getTime() <= refreshGraceSeconds * 1000;
        if (withinGrace) {
          const sealed = await redis.get(graceKey(session.id, parsed.generation));
          const pair = sealed ? openFromGrace<Omit<TokenPair, "sessionId">>(refreshToken, sealed) : undefined;
          if (pair) return { pair };
        }
        // A genuine token of an earlier generation, outside the grace window: someone else
        // holds a copy. End the session so neither copy works any longer.
        await endSession(t, session, "refresh_token_reuse");
        await writeAudit(models, audited(caller, { userId: user.id, action: "session.reuse_detected", entityType: "session", entityId: session.id, sessionId: session.id, newValues: { presented_generation: parsed.generation, current_generation: session.refreshGeneration } }), t);
        return { reuse: true };
      });
      if ("reuse" in outcome) {
        log.warn({ sessionId: parsed.sessionId, requestId: caller.meta.requestId }, "refresh token reuse detected: session revoked");
        throw unauthenticated("Refresh token reuse detected; the session has been ended");
      }
      return outcome.pair;
    },

    async logout(caller, refreshToken) {
      const { principal } = caller;
      const other = refreshToken ? parseRefreshToken(refreshToken.trim()) : undefined;
      await sequelize.transaction(async (t) => {
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
      const rows = await models.Session.findAll({
        where: { userId: caller.principal.subject, revokedAt: null },
        order: [["lastUsedAt", "DESC"], ["id", "ASC"]],
      });
      const now = Date.now();
      return rows
        .filter((s) => s.expiresAt.getTime() > now)
        .map((s) => ({
          sessionId: s.id,
          current: s.id === caller.principal.sessionId,
          ipAddress: s.ipAddress ?? "",
          userAgent: s.userAgent ?? "",
          device: { deviceId: s.deviceId ?? undefined, deviceType: s.deviceType ?? undefined, deviceName: s.deviceName ?? undefined, appVersion: s.appVersion ?? undefined, osVersion: s.osVersion ?? undefined },
          createdAt: s.createdAt,
          lastUsedAt: s.lastUsedAt,
          expiresAt: s.expiresAt,
        }));
    },

    async revoke(caller, sessionId) {
      if (!sessionId) throw invalid([{ field: "session_id", description: "required" }]);
      const missing = () => notFound("No such active session");
      if (!UUID.test(sessionId)) throw missing();
      await sequelize.transaction(async (t) => {
        const session = await models.Session.findOne({ where: { id: sessionId, userId: caller.principal.subject, revokedAt: null }, transaction: t, lock: t.LOCK.UPDATE });
        if (!session || session.expiresAt.getTime() <= Date.now()) throw missing();
        await endSession(t, session, "revoked_by_user");
        await writeAudit(models, audited(caller, { userId: caller.principal.subject, action: "session.revoked", entityType: "session", entityId: session.id }), t);
      });
      if (sessionId === caller.principal.sessionId) await denyList.deny(caller.principal.jti, caller.principal.expiresAt);
    },

    async checkPrincipal(principal) {
      if (principal.kind === "service") return { staff: false };
      if (!principal.sessionId) throw unauthenticated();
      const rows = await sequelize.query<{ is_active: boolean; is_staff: boolean }>(
        `SELECT u.is_active, u.is_staff FROM sessions s JOIN users u ON u.id = s.user_id
          WHERE s.id = :sid AND s.user_id = :sub AND s.revoked_at IS NULL AND s.expires_at > now()`,
        { replacements: { sid: principal.sessionId, sub: principal.subject }, type: QueryTypes.SELECT },
      );
      const row = rows[0];
      if (!row?.is_active) throw unauthenticated("Session has ended");
      return { staff: row.is_staff };
    },
  };
}
