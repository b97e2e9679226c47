// Sessions against real PostgreSQL and Redis: sign-ins written together (one statement for the
// sign-ins of one moment) still open one session per sign-in, and only for active accounts.
import { generateKeyPairSync } from "node:crypto";
import { expect } from "chai";
import { QueryTypes } from "sequelize";
import { loadConfig } from "../../src/config.js";
import type { Caller } from "../../src/domain/caller.js";
import { createDenyList } from "../../src/domain/deny-list.js";
import { createKeyRing, ringKey } from "../../src/domain/keys.js";
import { createSessions, type Sessions } from "../../src/domain/sessions.js";
import { createTokenIssuer } from "../../src/domain/tokens.js";
import { createLogger } from "../../src/logger.js";
import { openStores, type Stores } from "../../src/store/index.js";
import { REDIS_URL, uniqueDatabaseUrl, uniqueRedisPrefix } from "../support/env.js";

const config = loadConfig({ NODE_ENV: "test" });
const issuer = createTokenIssuer(createKeyRing([ringKey("k1", generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey)], "k1"), config);
const caller = (ip: string): Caller => ({ meta: { ip, userAgent: "test-agent", requestId: `req-${ip}` } });

describe("sessions (PostgreSQL + Redis)", () => {
  let stores: Stores;
  let sessions: Sessions;
  let n = 0;
  const newUser = () => stores.models.User.create({ username: `sessions_user_${++n}` });
  const rows = <T extends object>(sql: string, replacements: Record<string, unknown>) => stores.sequelize.query<T>(sql, { replacements, type: QueryTypes.SELECT });

  before(async () => {
    stores = await openStores({ databaseUrl: uniqueDatabaseUrl("sessions"), redisUrl: REDIS_URL, redisKeyPrefix: uniqueRedisPrefix("sessions") }, createLogger("silent"));
    const { sequelize, models, redis } = stores;
    sessions = createSessions({ sequelize, models, redis, issuer, denyList: createDenyList(stores), secret: Buffer.from("sessions-test-secret-0123456789abcdef"), config, logger: createLogger("silent") });
  });
  after(async () => stores?.close());

  it("writes concurrent sign-ins together, each with its own session, last_login and two audit rows", async () => {
    const [a, b] = [await newUser(), await newUser()];
    // Two sign-ins of one account and one of another, in the same turn of the event loop.
    const pairs = await Promise.all([
      sessions.signIn({ id: a.id, isStaff: false }, caller("10.0.0.1"), { deviceId: "phone-1", deviceType: "ANDROID" }, "phone"),
      sessions.signIn({ id: b.id, isStaff: true }, caller("10.0.0.2"), {}, "email"),
      sessions.signIn({ id: a.id, isStaff: false }, caller("10.0.0.3"), {}, "phone"),
    ]);
    expect(pairs.every((p) => p !== undefined)).to.equal(true);
    expect(new Set(pairs.map((p) => p!.sessionId)).size).to.equal(3);
    const opened = await rows<{ id: string; user_id: string; ip_address: string; device_id: string | null }>("SELECT id, user_id, ip_address, device_id FROM sessions WHERE user_id IN (:a, :b) ORDER BY ip_address", { a: a.id, b: b.id });
    expect(opened.map((s) => [s.id, s.user_id, s.ip_address, s.device_id])).to.deep.equal([
      [pairs[0]!.sessionId, a.id, "10.0.0.1", "phone-1"],
      [pairs[1]!.sessionId, b.id, "10.0.0.2", null],
      [pairs[2]!.sessionId, a.id, "10.0.0.3", null],
    ]);
    const audit = await rows<{ action: string; session_id: string; new_values: Record<string, unknown> }>("SELECT action, session_id, new_values FROM user_audit_logs WHERE user_id IN (:a, :b) ORDER BY id", { a: a.id, b: b.id });
    for (const pair of pairs) expect(audit.filter((r) => r.session_id === pair!.sessionId).map((r) => r.action).sort()).to.deep.equal(["session.created", "user.login"]);
    expect(audit.find((r) => r.session_id === pairs[1]!.sessionId && r.action === "user.login")?.new_values).to.deep.equal({ via: "email" });
    expect((await a.reload()).lastLogin).to.be.instanceOf(Date);
    expect((await b.reload()).lastLogin).to.be.instanceOf(Date);
  });

  it("opens no session for an account deactivated or deleted before the write, and records nothing for it", async () => {
    const [active, inactive, gone] = [await newUser(), await newUser(), await newUser()];
    await inactive.update({ isActive: false });
    await gone.destroy();
    const pairs = await Promise.all([active, inactive, gone].map((u) => sessions.signIn({ id: u.id, isStaff: false }, caller("10.0.0.9"), {}, "phone")));
    expect(pairs.map((p) => p !== undefined)).to.deep.equal([true, false, false]);
    const opened = await rows<{ user_id: string }>("SELECT user_id FROM sessions WHERE user_id IN (:ids)", { ids: [active.id, inactive.id, gone.id] });
    expect(opened.map((s) => s.user_id)).to.deep.equal([active.id]);
    const audit = await rows<{ user_id: string }>("SELECT user_id FROM user_audit_logs WHERE user_id IN (:ids)", { ids: [inactive.id, gone.id] });
    expect(audit).to.deep.equal([]);
    expect((await inactive.reload()).lastLogin).to.equal(null);
  });
});
