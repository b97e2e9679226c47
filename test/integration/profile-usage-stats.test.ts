// Usage statistics against a real PostgreSQL: every number computed from seeded audit,
// session, device, points, profile and KYC rows, the 30-day series included, and nothing of
// another user counted.
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import type { Caller } from "../../src/domain/caller.js";
import { DomainError } from "../../src/domain/errors.js";
import { ACTIVITY_DAYS, createUsageStatsDomain, type UsageStatsDomain } from "../../src/domain/usage-stats.js";
import { createLogger } from "../../src/logger.js";
import { openStores, type Stores } from "../../src/store/index.js";
import { REDIS_URL, uniqueDatabaseUrl, uniqueRedisPrefix } from "../support/env.js";

const DAY = 86_400_000;

/** Midnight UTC `daysAgo` days before today, plus `offsetMs`. */
function utcDay(daysAgo: number, offsetMs = 0): Date {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) - daysAgo * DAY + offsetMs);
}

const isoDay = (daysAgo: number) => utcDay(daysAgo).toISOString().slice(0, 10);

describe("usage stats (domain, PostgreSQL)", () => {
  let stores: Stores;
  let usageStats: UsageStatsDomain;

  before(async () => {
    stores = await openStores({ databaseUrl: uniqueDatabaseUrl("usage"), redisUrl: REDIS_URL, redisKeyPrefix: uniqueRedisPrefix("usage") }, createLogger("silent"));
    usageStats = createUsageStatsDomain(stores);
  });
  after(() => stores?.close());

  const callerOf = (userId: string): Caller => ({
    principal: { kind: "user", subject: userId, sessionId: randomUUID(), roles: [], jti: randomUUID(), expiresAt: Math.floor(Date.now() / 1000) + 900 },
    meta: { ip: "192.0.2.1", userAgent: "usage-test", requestId: randomUUID() },
  });

  async function newUser(joinedDaysAgo = 0): Promise<string> {
    const user = await stores.models.User.create({ username: `u_${randomUUID().slice(0, 12)}` });
    await stores.sequelize.query("UPDATE users SET date_joined = $2 WHERE id = $1", { bind: [user.id, new Date(Date.now() - joinedDaysAgo * DAY - 3_600_000)] });
    return user.id;
  }

  async function audit(userId: string, action: string, at: Date): Promise<void> {
    await stores.sequelize.query("INSERT INTO user_audit_logs (user_id, action, entity_type, created_at) VALUES ($1, $2, 'test', $3)", { bind: [userId, action, at] });
  }

  async function session(userId: string, opts: { revoked?: boolean; expired?: boolean; lastUsed?: Date } = {}): Promise<void> {
    await stores.models.Session.create({
      userId,
      refreshSeed: randomUUID(),
      expiresAt: new Date(Date.now() + (opts.expired ? -DAY : 30 * DAY)),
      revokedAt: opts.revoked ? new Date() : null,
      lastUsedAt: opts.lastUsed ?? new Date(Date.now() - 10 * DAY),
    });
  }

  async function points(userId: string, deltas: number[]): Promise<void> {
    let balance = 0n;
    for (const delta of deltas) {
      balance += BigInt(delta);
      await stores.models.PointsTransaction.create({
        userId,
        delta: String(delta),
        balanceAfter: String(balance),
        reason: "test",
        idempotencyKey: randomUUID(),
        requestFingerprint: "f",
      });
    }
  }

  it("gives a fresh user zeros, NOT_SUBMITTED and thirty empty days", async () => {
    const userId = await newUser();
    const stats = await usageStats.get(callerOf(userId));
    expect(stats).to.deep.include({
      totalLogins: 0,
      activeSessions: 0,
      activeDevices: 0,
      lastLogin: null,
      lastActivity: null,
      accountAgeDays: 0,
      profileCompleteness: 0,
      kycStatus: "NOT_SUBMITTED",
      pointsEarned: 0n,
      pointsSpent: 0n,
    });
    expect(stats.dailyActivity).to.have.length(ACTIVITY_DAYS);
    expect(stats.dailyActivity[0]!.date).to.equal(isoDay(ACTIVITY_DAYS - 1));
    expect(stats.dailyActivity.at(-1)!.date).to.equal(isoDay(0));
    expect(stats.dailyActivity.every((d) => d.logins === 0 && d.events === 0)).to.equal(true);
  });

  it("computes every number from the stores", async () => {
    const userId = await newUser(100);
    const other = await newUser(5);

    // Audit trail: logins (registered + login) inside and outside the window, other events.
    await audit(userId, "user.registered", utcDay(40, 3_600_000));
    await audit(userId, "user.login", utcDay(ACTIVITY_DAYS, 60_000)); // the day before the window
    await audit(userId, "profile.updated", utcDay(ACTIVITY_DAYS - 1)); // first day of the window, 00:00:00
    await audit(userId, "user.login", utcDay(3, 8 * 3_600_000));
    await audit(userId, "profile.updated", utcDay(3, 23 * 3_600_000 + 59 * 60_000));
    await audit(userId, "user.login", utcDay(0));
    await audit(userId, "user.login", utcDay(0, 1_000));
    await audit(userId, "kyc.submitted", utcDay(0, 2_000));
    await audit(other, "user.login", utcDay(0, 3_000));
    await audit(other, "profile.updated", utcDay(3));

    // Sessions: two live ones (counted), a revoked and an expired one (not); another user's.
    const recentUse = new Date(Date.now() - 60_000);
    await session(userId);
    await session(userId, { lastUsed: recentUse });
    await session(userId, { revoked: true });
    await session(userId, { expired: true });
    await session(other);

    // Devices: two active, one deactivated; another user's.
    for (const [owner, isActive] of [[userId, true], [userId, true], [userId, false], [other, true]] as const) {
      await stores.models.UserDevice.create({ userId: owner, deviceId: randomUUID(), deviceType: "ANDROID", isActive });
    }

    // Points ledger: +100 +50 −30 −20 → earned 150, spent 50. The wallet counters disagree on
    // purpose: the statistics read the ledger.
    await points(userId, [100, 50, -30, -20]);
    await points(other, [999]);
    await stores.models.UserPoints.create({ userId, currentPoints: "7", totalPoints: "7", totalSpent: "0" });

    await stores.models.UserProfile.create({ userId, fullName: "Ada Lovelace", dateOfBirth: "1990-12-10", address: null, avatarUrl: "https://cdn.example.com/a.png" });
    await stores.models.UserKyc.create({ userId, status: "PENDING", documentType: "PASSPORT", documentNumber: "AB123456", submittedAt: new Date() });

    const stats = await usageStats.get(callerOf(userId));
    expect(stats).to.deep.include({
      totalLogins: 5,
      activeSessions: 2,
      activeDevices: 2,
      accountAgeDays: 100,
      profileCompleteness: 75,
      kycStatus: "PENDING",
      pointsEarned: 150n,
      pointsSpent: 50n,
    });
    expect(stats.lastLogin?.getTime()).to.equal(utcDay(0, 1_000).getTime());
    // The latest evidence: the session used a minute ago beats today's audit rows at midnight…
    expect(stats.lastActivity?.getTime()).to.equal(Math.max(recentUse.getTime(), utcDay(0, 2_000).getTime()));

    const byDate = new Map(stats.dailyActivity.map((d) => [d.date, d]));
    expect(stats.dailyActivity.map((d) => d.date)).to.deep.equal(Array.from({ length: ACTIVITY_DAYS }, (_, i) => isoDay(ACTIVITY_DAYS - 1 - i)));
    expect(byDate.get(isoDay(0))).to.deep.equal({ date: isoDay(0), logins: 2, events: 3 });
    expect(byDate.get(isoDay(3))).to.deep.equal({ date: isoDay(3), logins: 1, events: 2 });
    expect(byDate.get(isoDay(ACTIVITY_DAYS - 1))).to.deep.equal({ date: isoDay(ACTIVITY_DAYS - 1), logins: 0, events: 1 });
    const busy = new Set([isoDay(0), isoDay(3), isoDay(ACTIVITY_DAYS - 1)]);
    for (const day of stats.dailyActivity) if (!busy.has(day.date)) expect(day, day.date).to.include({ logins: 0, events: 0 });
  });

  it("takes last_login from users.last_login when the audit trail has been pruned", async () => {
    const userId = await newUser(400);
    const lastLogin = new Date(Date.now() - 380 * DAY);
    const lastActivity = new Date(Date.now() - 370 * DAY);
    await stores.sequelize.query("UPDATE users SET last_login = $2, last_activity_at = $3 WHERE id = $1", { bind: [userId, lastLogin, lastActivity] });
    const stats = await usageStats.get(callerOf(userId));
    expect(stats.totalLogins).to.equal(0);
    expect(stats.lastLogin?.getTime()).to.equal(lastLogin.getTime());
    expect(stats.lastActivity?.getTime()).to.equal(lastActivity.getTime());
    expect(stats.accountAgeDays).to.equal(400);
  });

  it("answers not_found for a caller whose account is gone", async () => {
    const err = await usageStats.get(callerOf(randomUUID())).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(DomainError).with.property("kind", "not_found");
  });
});
