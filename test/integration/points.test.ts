// The points domain against a real PostgreSQL: wallet, ledger pagination, adjustments with
// idempotency, concurrency (row lock, key races) and their audit rows.
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import type { Caller } from "../../src/domain/caller.js";
import { DomainError } from "../../src/domain/errors.js";
import { createPointsDomain, type AdjustPointsInput, type PointsDomain } from "../../src/domain/points.js";
import { createLogger } from "../../src/logger.js";
import { openStores, type Stores } from "../../src/store/index.js";
import { REDIS_URL, uniqueDatabaseUrl, uniqueRedisPrefix } from "../support/env.js";
import { fieldsOf, rejection } from "../support/domain-errors.js";

const meta = { ip: "203.0.113.7", userAgent: "points-test/1.0", requestId: "req-1" };

function userCaller(userId: string, roles: Array<"staff"> = []): Caller {
  return { principal: { kind: "user", subject: userId, sessionId: randomUUID(), roles, jti: randomUUID(), expiresAt: 0 }, meta };
}

function serviceCaller(name: string): Caller {
  return { principal: { kind: "service", subject: name, roles: ["service"], jti: randomUUID(), expiresAt: 0 }, meta };
}

describe("points (integration)", function () {
  let stores: Stores;
  let points: PointsDomain;
  const staffId = randomUUID();
  const staff = userCaller(staffId, ["staff"]);
  let keyCounter = 0;
  const key = () => `key-${++keyCounter}-${randomUUID()}`;

  before(async () => {
    stores = await openStores({ databaseUrl: uniqueDatabaseUrl("points"), redisUrl: REDIS_URL, redisKeyPrefix: uniqueRedisPrefix("points") }, createLogger("silent"));
    points = createPointsDomain({ sequelize: stores.sequelize, models: stores.models, pointsValue: "0.01" });
  });

  after(() => stores?.close());

  let userCount = 0;
  async function newUser(): Promise<string> {
    const user = await stores.models.User.create({ username: `points_user_${++userCount}` });
    return user.id;
  }

  const adjust = (userId: string, delta: bigint, extra: Partial<AdjustPointsInput> = {}, caller = staff) =>
    points.adjust(caller, { userId, delta, reason: "test", idempotencyKey: key(), ...extra });

  async function ledger(userId: string) {
    const rows = await stores.models.PointsTransaction.findAll({ where: { userId } });
    return { count: rows.length, sum: rows.reduce((s, r) => s + BigInt(r.delta), 0n) };
  }

  async function walletRow(userId: string) {
    const row = await stores.models.UserPoints.findByPk(userId);
    return row ? { current: BigInt(row.currentPoints), total: BigInt(row.totalPoints), spent: BigInt(row.totalSpent) } : null;
  }

  describe("GetWallet", () => {
    it("answers zeros for a user whose points never changed", async () => {
      const userId = await newUser();
      expect(await points.getWallet(userCaller(userId))).to.deep.equal({ balance: "0.00", points: 0n, totalPoints: 0n, lastUpdated: null });
    });

    it("formats the balance with two places and keeps total_points through debits", async () => {
      const userId = await newUser();
      await adjust(userId, 12345n);
      await adjust(userId, -45n);
      const wallet = await points.getWallet(userCaller(userId));
      expect(wallet).to.include({ balance: "123.00", points: 12300n, totalPoints: 12345n });
      expect(wallet.lastUpdated).to.be.instanceOf(Date);
      expect(await walletRow(userId)).to.deep.equal({ current: 12300n, total: 12345n, spent: 45n });
    });

    it("computes the balance exactly at another POINTS_VALUE and beyond 2^53", async () => {
      const userId = await newUser();
      const odd = createPointsDomain({ sequelize: stores.sequelize, models: stores.models, pointsValue: "0.015" });
      await odd.adjust(staff, { userId, delta: 3n, reason: "odd", idempotencyKey: key() });
      expect((await odd.getWallet(userCaller(userId))).balance).to.equal("0.05"); // 0.045, half-up
      const big = 9007199254740993n; // 2^53 + 1
      const a = await odd.adjust(staff, { userId, delta: big - 3n, reason: "big", idempotencyKey: key() });
      expect(a.points).to.equal(big);
      expect(a.balance).to.equal("135107988821114.90"); // 9007199254740993 × 0.015 = 135107988821114.895
      expect(await points.getWallet(userCaller(userId))).to.include({ balance: "90071992547409.93", points: big });
    });
  });

  describe("AdjustPoints", () => {
    it("credits and debits, returning the entry and the new wallet", async () => {
      const userId = await newUser();
      const credit = await adjust(userId, 500n, { reason: "  welcome bonus  " });
      expect(credit).to.deep.include({ balance: "5.00", points: 500n, totalPoints: 500n });
      expect(credit.transaction).to.deep.include({ userId, delta: 500n, balanceAfter: 500n, reason: "welcome bonus" });
      const debit = await adjust(userId, -200n);
      expect(debit).to.deep.include({ balance: "3.00", points: 300n, totalPoints: 500n });
      expect(debit.transaction).to.deep.include({ delta: -200n, balanceAfter: 300n });
    });

    it("records who adjusted: the staff user's id or service:<name>", async () => {
      const userId = await newUser();
      const byStaff = await adjust(userId, 10n);
      const byService = await adjust(userId, 10n, {}, serviceCaller("billing"));
      const actors = await stores.models.PointsTransaction.findAll({ where: { userId }, order: [["createdAt", "ASC"]] });
      expect(actors.map((r) => [r.id, r.actorId])).to.deep.equal([
        [byStaff.transaction.id, staffId],
        [byService.transaction.id, "service:billing"],
      ]);
    });

    it("writes the audit row in the same transaction: changed fields only, actor, IP, user agent, session", async () => {
      const userId = await newUser();
      await adjust(userId, 70n);
      const debit = await adjust(userId, -20n);
      const row = await stores.models.UserAuditLog.findOne({ where: { entityId: debit.transaction.id } });
      expect(row).to.not.equal(null);
      expect(row!).to.deep.include({
        userId,
        actorId: staffId,
        action: "points.adjusted",
        entityType: "points",
        oldValues: { current_points: "70", total_spent: "0" },
        newValues: { current_points: "50", total_spent: "20", reason: debit.transaction.reason },
        ipAddress: meta.ip,
        userAgent: meta.userAgent,
        sessionId: staff.principal!.sessionId,
      });
      const credits = await stores.models.UserAuditLog.findAll({ where: { userId, action: "points.adjusted" } });
      expect(credits).to.have.length(2);
      const service = await adjust(userId, 5n, {}, serviceCaller("billing"));
      const serviceRow = await stores.models.UserAuditLog.findOne({ where: { entityId: service.transaction.id } });
      expect(serviceRow!).to.deep.include({ actorId: "service:billing", sessionId: null, oldValues: { current_points: "50", total_points: "70" }, newValues: { current_points: "55", total_points: "75", reason: service.transaction.reason } });
    });

    it("refuses bad arguments with field violations, all at once", async () => {
      const err = await rejection(points.adjust(staff, { userId: "not-a-uuid", delta: 0n, reason: "  ", idempotencyKey: "" }), "invalid_argument");
      expect(fieldsOf(err)).to.deep.equal(["user_id", "delta", "reason", "idempotency_key"]);
      const userId = await newUser();
      const long = await rejection(points.adjust(staff, { userId, delta: 1n, reason: "r".repeat(256), idempotencyKey: "k".repeat(129) }), "invalid_argument");
      expect(fieldsOf(long)).to.deep.equal(["reason", "idempotency_key"]);
      await points.adjust(staff, { userId, delta: 1n, reason: "r".repeat(255), idempotencyKey: `${"k".repeat(91)}${randomUUID()}` });
    });

    it("answers not_found for a well-formed id of no user, and changes nothing", async () => {
      const nobody = randomUUID();
      await rejection(adjust(nobody, 10n), "not_found");
      expect(await walletRow(nobody)).to.equal(null);
      expect(await ledger(nobody)).to.deep.equal({ count: 0, sum: 0n });
    });

    it("is refused to normal users (permission_denied)", async () => {
      const userId = await newUser();
      await rejection(adjust(userId, 10n, {}, userCaller(userId)), "permission_denied");
      expect(await walletRow(userId)).to.equal(null);
    });

    it("refuses a debit beyond the balance (failed_precondition) and changes nothing", async () => {
      const userId = await newUser();
      await adjust(userId, 100n);
      const audits = await stores.models.UserAuditLog.count({ where: { userId } });
      await rejection(adjust(userId, -101n), "failed_precondition");
      expect(await walletRow(userId)).to.deep.equal({ current: 100n, total: 100n, spent: 0n });
      expect(await ledger(userId)).to.deep.equal({ count: 1, sum: 100n });
      expect(await stores.models.UserAuditLog.count({ where: { userId } })).to.equal(audits);
      // A user without a wallet row: any debit is beyond it.
      const fresh = await newUser();
      await rejection(adjust(fresh, -1n), "failed_precondition");
      expect(await ledger(fresh)).to.deep.equal({ count: 0, sum: 0n });
    });

    describe("idempotency", () => {
      it("returns the first result for a repeated key and changes nothing", async () => {
        const userId = await newUser();
        const idempotencyKey = key();
        const first = await adjust(userId, 300n, { idempotencyKey });
        await adjust(userId, 50n);
        await adjust(userId, -100n);
        const again = await adjust(userId, 300n, { idempotencyKey });
        // The first answer byte for byte: the wallet as it stood right after the first entry.
        expect(again).to.deep.equal(first);
        expect(again).to.deep.include({ balance: "3.00", points: 300n, totalPoints: 300n });
        expect(await ledger(userId)).to.deep.equal({ count: 3, sum: 250n });
        expect(await stores.models.UserAuditLog.count({ where: { userId } })).to.equal(3);
      });

      it("replays a debit even when the balance would no longer allow it", async () => {
        const userId = await newUser();
        await adjust(userId, 100n);
        const idempotencyKey = key();
        const first = await adjust(userId, -100n, { idempotencyKey });
        expect(await adjust(userId, -100n, { idempotencyKey })).to.deep.equal(first);
      });

      it("refuses a key reused with other arguments (invalid_argument) and changes nothing", async () => {
        const userId = await newUser();
        const other = await newUser();
        const idempotencyKey = key();
        await adjust(userId, 10n, { idempotencyKey, reason: "bonus" });
        for (const changed of [{ delta: 11n }, { reason: "other" }, { userId: other }]) {
          const err = await rejection(adjust(userId, 10n, { idempotencyKey, reason: "bonus", ...changed }), "invalid_argument");
          expect(fieldsOf(err)).to.deep.equal(["idempotency_key"]);
        }
        expect(await ledger(userId)).to.deep.equal({ count: 1, sum: 10n });
        expect(await ledger(other)).to.deep.equal({ count: 0, sum: 0n });
      });

      it("gives parallel requests with one key a single entry and the same answer", async () => {
        const userId = await newUser();
        await adjust(userId, 1000n);
        const idempotencyKey = key();
        const results = await Promise.all(Array.from({ length: 10 }, () => adjust(userId, -400n, { idempotencyKey })));
        for (const r of results) expect(r).to.deep.equal(results[0]);
        expect(results[0]).to.deep.include({ points: 600n, balance: "6.00" });
        expect(await ledger(userId)).to.deep.equal({ count: 2, sum: 600n });
        expect(await walletRow(userId)).to.deep.equal({ current: 600n, total: 1000n, spent: 400n });
      });

      it("settles parallel requests with one key for different users: one wins, the others invalid_argument", async () => {
        const users = await Promise.all(Array.from({ length: 6 }, newUser));
        const idempotencyKey = key();
        const outcomes = await Promise.allSettled(users.map((userId) => adjust(userId, 5n, { idempotencyKey })));
        const won = outcomes.filter((o) => o.status === "fulfilled");
        expect(won).to.have.length(1);
        for (const o of outcomes) {
          if (o.status === "rejected") expect((o.reason as DomainError).kind).to.equal("invalid_argument");
        }
        expect(await stores.models.PointsTransaction.count({ where: { idempotencyKey } })).to.equal(1);
      });
    });

    describe("concurrency", () => {
      it("lets exactly one of 30 parallel debits of the whole balance through", async () => {
        const userId = await newUser();
        await adjust(userId, 1000n);
        const outcomes = await Promise.allSettled(Array.from({ length: 30 }, () => adjust(userId, -1000n)));
        const ok = outcomes.filter((o) => o.status === "fulfilled");
        const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected");
        expect(ok).to.have.length(1);
        expect(refused).to.have.length(29);
        for (const r of refused) expect((r.reason as DomainError).kind).to.equal("failed_precondition");
        expect(await walletRow(userId)).to.deep.equal({ current: 0n, total: 1000n, spent: 1000n });
        expect((await ledger(userId)).sum).to.equal(0n);
      });

      it("keeps ledger sum = balance under 30 parallel mixed credits and debits, in a consistent order", async () => {
        const userId = await newUser();
        await adjust(userId, 100n);
        const deltas = Array.from({ length: 30 }, (_, i) => (i % 3 === 0 ? 25n : -15n - BigInt(i % 4)));
        const outcomes = await Promise.allSettled(deltas.map((delta) => adjust(userId, delta)));
        for (const o of outcomes) if (o.status === "rejected") expect((o.reason as DomainError).kind).to.equal("failed_precondition");
        const applied = deltas.filter((_, i) => outcomes[i]!.status === "fulfilled");
        const wallet = await walletRow(userId);
        const { sum } = await ledger(userId);
        expect(sum).to.equal(wallet!.current);
        expect(wallet!.current >= 0n, "balance never negative").to.equal(true);
        expect(wallet!.total).to.equal(100n + applied.filter((d) => d > 0n).reduce((s, d) => s + d, 0n));
        expect(wallet!.spent).to.equal(-applied.filter((d) => d < 0n).reduce((s, d) => s + d, 0n));
        // Oldest first, every balance_after is the running sum: ledger order = applied order.
        const page = await points.listTransactions(userCaller(userId), { pageSize: 100, pageToken: "" });
        let running = 0n;
        for (const entry of [...page.transactions].reverse()) {
          running += entry.delta;
          expect(entry.balanceAfter).to.equal(running);
        }
      });
    });
  });

  describe("ListPointsTransactions", () => {
    it("pages through the caller's ledger newest first, without gaps or repeats", async () => {
      const userId = await newUser();
      const other = await newUser();
      await adjust(other, 7n);
      const made: string[] = [];
      for (let i = 1; i <= 25; i++) made.push((await adjust(userId, BigInt(i), { reason: `r${i}` })).transaction.id);
      const caller = userCaller(userId);
      const seen: string[] = [];
      const sizes: number[] = [];
      let pageToken = "";
      do {
        const page = await points.listTransactions(caller, { pageSize: 10, pageToken });
        sizes.push(page.transactions.length);
        seen.push(...page.transactions.map((t) => t.id));
        for (const t of page.transactions) expect(t.userId).to.equal(userId);
        pageToken = page.nextPageToken;
      } while (pageToken);
      expect(sizes).to.deep.equal([10, 10, 5]);
      expect(seen).to.deep.equal([...made].reverse());
      const first = await points.listTransactions(caller, { pageSize: 0, pageToken: "" });
      expect(first.transactions).to.have.length(20);
      expect(first.transactions[0]).to.deep.include({ delta: 25n, balanceAfter: 325n, reason: "r25" });
    });

    it("answers an exact last page without a next token", async () => {
      const userId = await newUser();
      for (let i = 0; i < 3; i++) await adjust(userId, 1n);
      const page = await points.listTransactions(userCaller(userId), { pageSize: 3, pageToken: "" });
      expect(page.transactions).to.have.length(3);
      expect(page.nextPageToken).to.equal("");
      expect(await points.listTransactions(userCaller(await newUser()), { pageSize: 0, pageToken: "" })).to.deep.equal({ transactions: [], nextPageToken: "" });
    });

    it("refuses a bad page size or token (invalid_argument)", async () => {
      const caller = userCaller(await newUser());
      for (const pageSize of [-1, 101]) {
        expect(fieldsOf(await rejection(points.listTransactions(caller, { pageSize, pageToken: "" }), "invalid_argument"))).to.deep.equal(["page_size"]);
      }
      const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
      const badTokens = ["not a token", "abc", b64(["2024-02-30T00:00:00.000000Z", randomUUID()]), b64(["2024-01-01T00:00:00Z", randomUUID()]), b64(["2024-01-01T00:00:00.000000Z", "x"]), b64({})];
      for (const pageToken of badTokens) {
        expect(fieldsOf(await rejection(points.listTransactions(caller, { pageSize: 5, pageToken }), "invalid_argument"))).to.deep.equal(["page_token"]);
      }
    });
  });
});
