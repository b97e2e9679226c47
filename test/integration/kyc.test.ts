// The KYC domain against a real PostgreSQL: validation per document type, the state
// machine, staff review with the reviewer in the audit trail, concurrent submits and
// reviews, document numbers masked everywhere but staff views (never in logs), keyset
// paging with a status filter.
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import { QueryTypes } from "sequelize";
import type { Caller, PrincipalRole } from "../../src/domain/caller.js";
import { DomainError } from "../../src/domain/errors.js";
import { createKycDomain, maskDocumentNumber, type KycDomain, type KycPage, type KycRecord, type ListKycInput, type ReviewKycInput, type SubmitKycInput } from "../../src/domain/kyc.js";
import { createLogger } from "../../src/logger.js";
import { openStores, type Stores } from "../../src/store/index.js";
import { REDIS_URL, uniqueDatabaseUrl, uniqueRedisPrefix } from "../support/env.js";
import { rejection } from "../support/domain-errors.js";

const IP = "198.51.100.23";
const USER_AGENT = "kyc-test/2.0";

const FRONT = "https://docs.example.com/front.jpg";
const BACK = "https://docs.example.com/back.jpg";

let numberCounter = 0;
/** A passport number unique in this file, so that searching logs and audit rows for it means something. */
function passportNumber(): string {
  return `P${String(Date.now() % 1e5).padStart(5, "0")}${String(++numberCounter).padStart(3, "0")}`;
}

function passport(documentNumber = passportNumber()): SubmitKycInput {
  return { documentType: "PASSPORT", documentNumber, documentFrontUrl: FRONT, documentBackUrl: "" };
}

describe("KYC (domain, PostgreSQL)", () => {
  let stores: Stores;
  let kyc: KycDomain;
  const logLines: string[] = [];
  let staffId: string;

  before(async () => {
    stores = await openStores({ databaseUrl: uniqueDatabaseUrl("kyc"), redisUrl: REDIS_URL, redisKeyPrefix: uniqueRedisPrefix("kyc") }, createLogger("silent"));
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logLines.push(chunk.toString("utf8"));
        done();
      },
    });
    kyc = createKycDomain({ ...stores, logger: createLogger("trace", {}, sink) });
    staffId = await newUser({ staff: true });
  });
  after(() => stores?.close());

  async function newUser(opts: { staff?: boolean; kycRow?: boolean } = {}): Promise<string> {
    const user = await stores.models.User.create({ username: `k_${randomUUID().slice(0, 12)}`, isStaff: opts.staff ?? false });
    if (opts.kycRow) await stores.models.UserKyc.create({ userId: user.id });
    return user.id;
  }

  function callerOf(userId: string, roles: PrincipalRole[] = [], sessionId: string = randomUUID()): Caller {
    return {
      principal: { kind: "user", subject: userId, sessionId, roles, jti: randomUUID(), expiresAt: Math.floor(Date.now() / 1000) + 900 },
      meta: { ip: IP, userAgent: USER_AGENT, requestId: randomUUID() },
    };
  }
  const staff = (sessionId?: string) => callerOf(staffId, ["staff"], sessionId);

  const auditRows = (userId: string) => stores.models.UserAuditLog.findAll({ where: { userId }, order: [["id", "ASC"]] });

  async function submitted(input: SubmitKycInput = passport()): Promise<{ userId: string; record: KycRecord }> {
    const userId = await newUser();
    return { userId, record: await kyc.submit(callerOf(userId), input) };
  }

  describe("SubmitKyc validation", () => {
    const cases: Array<[string, Partial<SubmitKycInput>, string[]]> = [
      ["no document type", { documentType: undefined }, ["document_type"]],
      ["an unknown document type", { documentType: "LIBRARY_CARD" as never }, ["document_type"]],
      ["an empty number", { documentNumber: "  " }, ["document_number"]],
      ["a passport number of 5", { documentNumber: "AB123" }, ["document_number"]],
      ["a passport number of 10", { documentNumber: "AB12345678" }, ["document_number"]],
      ["a passport number with -", { documentNumber: "AB-12345" }, ["document_number"]],
      ["a passport number with a non-ASCII letter", { documentNumber: "ÄB123456" }, ["document_number"]],
      ["a national id of 4", { documentType: "NATIONAL_ID", documentNumber: "1234", documentBackUrl: BACK }, ["document_number"]],
      ["a national id of 21", { documentType: "NATIONAL_ID", documentNumber: "1".repeat(21), documentBackUrl: BACK }, ["document_number"]],
      ["a national id with -", { documentType: "NATIONAL_ID", documentNumber: "123-456", documentBackUrl: BACK }, ["document_number"]],
      ["a driving licence of 21", { documentType: "DRIVING_LICENSE", documentNumber: "D-".repeat(10) + "1", documentBackUrl: BACK }, ["document_number"]],
      ["a driving licence of dashes only", { documentType: "DRIVING_LICENSE", documentNumber: "-----", documentBackUrl: BACK }, ["document_number"]],
      ["a driving licence with /", { documentType: "DRIVING_LICENSE", documentNumber: "D12/3456", documentBackUrl: BACK }, ["document_number"]],
      ["no front URL", { documentFrontUrl: "" }, ["document_front_url"]],
      ["an http front URL", { documentFrontUrl: "http://docs.example.com/front.jpg" }, ["document_front_url"]],
      ["an http back URL on a passport", { documentBackUrl: "http://docs.example.com/back.jpg" }, ["document_back_url"]],
      ["no back URL for a national id", { documentType: "NATIONAL_ID", documentNumber: "123456789" }, ["document_back_url"]],
      ["no back URL for a driving licence", { documentType: "DRIVING_LICENSE", documentNumber: "D123-456" }, ["document_back_url"]],
      ["everything wrong", { documentType: "NATIONAL_ID", documentNumber: "12", documentFrontUrl: "ftp://x", documentBackUrl: "" }, ["document_number", "document_front_url", "document_back_url"]],
    ];

    for (const [name, change, fields] of cases) {
      it(`rejects ${name} (${fields.join(", ")}) and stores nothing`, async () => {
        const userId = await newUser();
        const input = { ...passport(), ...change };
        const err = await rejection(kyc.submit(callerOf(userId), input));
        expect(err.kind).to.equal("invalid_argument");
        expect(err.extra.violations?.map((v) => v.field)).to.deep.equal(fields);
        if (input.documentNumber.trim().length > 3) expect(err.message).to.not.include(input.documentNumber.trim());
        expect((await kyc.status(callerOf(userId))).status).to.equal("NOT_SUBMITTED");
        expect(await auditRows(userId)).to.be.empty;
      });
    }

    it("removes spaces and upper-cases letters", async () => {
      const userId = await newUser();
      await kyc.submit(callerOf(userId), { documentType: "DRIVING_LICENSE", documentNumber: " dl 12-34 5x ", documentFrontUrl: FRONT, documentBackUrl: BACK });
      const row = (await stores.models.UserKyc.findByPk(userId))!;
      expect(row).to.include({ documentNumber: "DL12-345X", documentNumberLast4: "345X", documentType: "DRIVING_LICENSE" });
    });

    it("accepts a passport without a back image and the bounds of each type", async () => {
      const ok: SubmitKycInput[] = [
        passport("AB1234"),
        passport("AB1234567"),
        { documentType: "NATIONAL_ID", documentNumber: "12345", documentFrontUrl: FRONT, documentBackUrl: BACK },
        { documentType: "NATIONAL_ID", documentNumber: "A".repeat(20), documentFrontUrl: FRONT, documentBackUrl: BACK },
        { documentType: "DRIVING_LICENSE", documentNumber: "D-1-2", documentFrontUrl: FRONT, documentBackUrl: BACK },
      ];
      for (const input of ok) expect((await submitted(input)).record.status).to.equal("PENDING");
    });
  });

  describe("state machine", () => {
    it("is NOT_SUBMITTED before any submission, with or without a row", async () => {
      for (const userId of [await newUser(), await newUser({ kycRow: true })]) {
        expect(await kyc.status(callerOf(userId))).to.deep.equal({ status: "NOT_SUBMITTED", rejectionReason: null, verifiedAt: null, submittedAt: null, documentType: null });
      }
    });

    it("submit → PENDING, the owner sees the number masked only", async () => {
      const number = passportNumber();
      const userId = await newUser({ kycRow: true });
      const record = await kyc.submit(callerOf(userId), passport(number));
      expect(record).to.include({ userId, status: "PENDING", documentType: "PASSPORT", documentNumberMasked: maskDocumentNumber(number), documentFrontUrl: FRONT, documentBackUrl: null });
      expect(record.documentNumberMasked).to.match(/^\*+.{4}$/).and.to.have.length(number.length);
      expect(record).to.not.have.property("documentNumber");
      expect(record.submittedAt).to.be.instanceOf(Date);
      const status = await kyc.status(callerOf(userId));
      expect(status).to.include({ status: "PENDING", documentType: "PASSPORT", verifiedAt: null });
    });

    it("refuses a resubmission while PENDING and after APPROVED", async () => {
      const { userId } = await submitted();
      expect((await rejection(kyc.submit(callerOf(userId), passport()))).kind).to.equal("failed_precondition");
      await kyc.review(staff(), { userId, decision: "APPROVE", rejectionReason: "" });
      expect((await rejection(kyc.submit(callerOf(userId), passport()))).kind).to.equal("failed_precondition");
      expect((await kyc.status(callerOf(userId))).status).to.equal("APPROVED");
    });

    it("reject → REJECTED with its reason; a resubmission is then PENDING again", async () => {
      const { userId } = await submitted();
      const rejected = await kyc.review(staff(), { userId, decision: "REJECT", rejectionReason: "  Photo is blurred  " });
      expect(rejected).to.include({ status: "REJECTED", rejectionReason: "Photo is blurred", reviewedBy: staffId, verifiedAt: null });
      expect(await kyc.status(callerOf(userId))).to.include({ status: "REJECTED", rejectionReason: "Photo is blurred" });

      const again = await kyc.submit(callerOf(userId), { documentType: "NATIONAL_ID", documentNumber: "X1234567", documentFrontUrl: FRONT, documentBackUrl: BACK });
      expect(again).to.include({ status: "PENDING", documentType: "NATIONAL_ID", rejectionReason: null, reviewedBy: null, documentBackUrl: BACK });
    });

    it("approve → APPROVED with verified_at and the reviewer", async () => {
      const { userId } = await submitted();
      const before = Date.now();
      const approved = await kyc.review(staff(), { userId, decision: "APPROVE", rejectionReason: "" });
      expect(approved).to.include({ status: "APPROVED", reviewedBy: staffId, rejectionReason: null });
      expect(approved.verifiedAt!.getTime()).to.be.within(before - 1000, Date.now() + 1000);
      const row = (await stores.models.UserKyc.findByPk(userId))!;
      expect(row.reviewedAt).to.be.instanceOf(Date);
      expect((await kyc.status(callerOf(userId))).verifiedAt?.getTime()).to.equal(approved.verifiedAt!.getTime());
    });

    it("refuses to review a record that is not PENDING", async () => {
      const { userId } = await submitted();
      await kyc.review(staff(), { userId, decision: "REJECT", rejectionReason: "Expired document" });
      for (const decision of ["APPROVE", "REJECT"] as const) {
        const err = await rejection(kyc.review(staff(), { userId, decision, rejectionReason: decision === "REJECT" ? "again" : "" }));
        expect(err.kind).to.equal("failed_precondition");
      }
    });

    it("answers not_found for an unknown user and for one who never submitted", async () => {
      for (const userId of [randomUUID(), await newUser(), await newUser({ kycRow: true })]) {
        expect((await rejection(kyc.review(staff(), { userId, decision: "APPROVE", rejectionReason: "" }))).kind).to.equal("not_found");
      }
    });

    it("validates the review request before anything else", async () => {
      const { userId } = await submitted();
      const cases: Array<[ReviewKycInput, string]> = [
        [{ userId, decision: "REJECT", rejectionReason: "" }, "rejection_reason"],
        [{ userId, decision: "REJECT", rejectionReason: "   " }, "rejection_reason"],
        [{ userId, decision: "REJECT", rejectionReason: "x".repeat(501) }, "rejection_reason"],
        [{ userId, decision: "APPROVE", rejectionReason: "why not" }, "rejection_reason"],
        [{ userId, decision: undefined, rejectionReason: "" }, "decision"],
        [{ userId: "not-a-uuid", decision: "APPROVE", rejectionReason: "" }, "user_id"],
        [{ userId: "", decision: "APPROVE", rejectionReason: "" }, "user_id"],
      ];
      for (const [input, field] of cases) {
        const err = await rejection(kyc.review(staff(), input));
        expect(err.kind, field).to.equal("invalid_argument");
        expect(err.extra.violations?.map((v) => v.field)).to.deep.equal([field]);
      }
      expect((await kyc.status(callerOf(userId))).status).to.equal("PENDING");
    });
  });

  describe("access", () => {
    it("keeps ListKycSubmissions and ReviewKyc to staff", async () => {
      const { userId } = await submitted();
      const other = await newUser();
      expect((await rejection(kyc.list(callerOf(other), { pageSize: 0, pageToken: "" }))).kind).to.equal("permission_denied");
      expect((await rejection(kyc.review(callerOf(other), { userId, decision: "APPROVE", rejectionReason: "" }))).kind).to.equal("permission_denied");
      expect((await kyc.status(callerOf(userId))).status).to.equal("PENDING");
    });

    it("does not let staff review their own submission", async () => {
      const reviewer = await newUser({ staff: true });
      await kyc.submit(callerOf(reviewer, ["staff"]), passport());
      const err = await rejection(kyc.review(callerOf(reviewer, ["staff"]), { userId: reviewer, decision: "APPROVE", rejectionReason: "" }));
      expect(err.kind).to.equal("permission_denied");
    });

    it("scopes submit and status to the caller", async () => {
      const { userId } = await submitted();
      const other = await newUser();
      expect((await kyc.status(callerOf(other))).status).to.equal("NOT_SUBMITTED");
      expect((await kyc.submit(callerOf(other), passport())).userId).to.equal(other);
      expect((await kyc.status(callerOf(userId))).status).to.equal("PENDING");
    });
  });

  describe("concurrency", () => {
    const outcomes = async (calls: Array<Promise<unknown>>) => {
      const settled = await Promise.allSettled(calls);
      const failures = settled.filter((s): s is PromiseRejectedResult => s.status === "rejected");
      for (const f of failures) expect((f.reason as DomainError).kind).to.equal("failed_precondition");
      return settled.length - failures.length;
    };

    it("lets exactly one of two concurrent submits succeed (no row, NOT_SUBMITTED row, REJECTED row)", async () => {
      for (let round = 0; round < 5; round++) {
        const fresh = await newUser();
        const withRow = await newUser({ kycRow: true });
        const { userId: wasRejected } = await submitted();
        await kyc.review(staff(), { userId: wasRejected, decision: "REJECT", rejectionReason: "retry" });
        for (const userId of [fresh, withRow, wasRejected]) {
          expect(await outcomes([kyc.submit(callerOf(userId), passport()), kyc.submit(callerOf(userId), passport())])).to.equal(1);
          expect((await auditRows(userId)).filter((r) => r.action === "kyc.submitted")).to.have.length(userId === wasRejected ? 2 : 1);
        }
      }
    });

    it("lets exactly one of two concurrent reviews decide", async () => {
      const { userId } = await submitted();
      const decided = await outcomes([
        kyc.review(staff(), { userId, decision: "APPROVE", rejectionReason: "" }),
        kyc.review(staff(), { userId, decision: "REJECT", rejectionReason: "no" }),
      ]);
      expect(decided).to.equal(1);
      expect((await auditRows(userId)).filter((r) => r.action !== "kyc.submitted")).to.have.length(1);
    });
  });

  describe("audit and secrecy of document numbers", () => {
    it("records submit and review with masked numbers, the reviewer as actor, in the change's transaction", async () => {
      const number = passportNumber();
      const userId = await newUser();
      const userSession = randomUUID();
      const staffSession = randomUUID();
      await kyc.submit(callerOf(userId, [], userSession), passport(number));
      await kyc.review(staff(staffSession), { userId, decision: "REJECT", rejectionReason: "Glare on the photo" });
      await kyc.submit(callerOf(userId, [], userSession), { ...passport(number), documentFrontUrl: "https://docs.example.com/front-2.jpg" });
      await kyc.review(staff(staffSession), { userId, decision: "APPROVE", rejectionReason: "" });

      const rows = await auditRows(userId);
      expect(rows.map((r) => r.action)).to.deep.equal(["kyc.submitted", "kyc.rejected", "kyc.submitted", "kyc.approved"]);
      for (const row of rows) expect(row).to.include({ entityType: "kyc", entityId: userId, userId, ipAddress: IP, userAgent: USER_AGENT });

      const [submit, reject, resubmit, approve] = rows as [(typeof rows)[0], (typeof rows)[0], (typeof rows)[0], (typeof rows)[0]];
      expect(submit).to.include({ actorId: null, sessionId: userSession });
      expect(submit.oldValues).to.include({ status: "NOT_SUBMITTED", document_number: null });
      expect(submit.newValues).to.include({ status: "PENDING", document_type: "PASSPORT", document_number: maskDocumentNumber(number), document_front_url: FRONT });
      expect(reject).to.include({ actorId: staffId, sessionId: staffSession });
      expect(reject.oldValues).to.deep.equal({ status: "PENDING", rejection_reason: null, reviewed_by: null, reviewed_at: null });
      expect(reject.newValues).to.include({ status: "REJECTED", rejection_reason: "Glare on the photo", reviewed_by: staffId });
      // Only what changed: same number and type, so neither appears.
      expect(resubmit.newValues).to.have.all.keys("status", "document_front_url", "rejection_reason", "submitted_at", "reviewed_by", "reviewed_at");
      expect(approve).to.include({ actorId: staffId });
      expect(approve.newValues).to.include({ status: "APPROVED", reviewed_by: staffId });
      expect(approve.newValues).to.have.property("verified_at").that.is.a("string");

      const everything = await stores.sequelize.query<{ values: string }>(
        "SELECT coalesce(old_values::text, '') || coalesce(new_values::text, '') AS values FROM user_audit_logs WHERE user_id = $1",
        { bind: [userId], type: QueryTypes.SELECT },
      );
      for (const { values } of everything) expect(values).to.not.include(number);

      const [kycTx] = await stores.sequelize.query<{ xmin: string }>("SELECT xmin::text FROM user_kyc WHERE user_id = $1", { bind: [userId], type: QueryTypes.SELECT });
      const [auditTx] = await stores.sequelize.query<{ xmin: string }>("SELECT xmin::text FROM user_audit_logs WHERE user_id = $1 AND action = 'kyc.approved'", { bind: [userId], type: QueryTypes.SELECT });
      expect(auditTx!.xmin).to.equal(kycTx!.xmin);
    });

    it("rolls a submission back when its audit row cannot be written", async () => {
      const userId = await newUser();
      await stores.sequelize.query(`
        CREATE OR REPLACE FUNCTION test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'audit refused by the test'; END $$`);
      await stores.sequelize.query(`CREATE TRIGGER test_refuse_kyc_audit BEFORE INSERT ON user_audit_logs FOR EACH ROW
        WHEN (NEW.user_id = '${userId}') EXECUTE FUNCTION test_refuse_audit()`);
      try {
        let failure: unknown;
        await kyc.submit(callerOf(userId), passport()).catch((err: unknown) => (failure = err));
        expect(String(failure)).to.match(/audit refused by the test/);
      } finally {
        await stores.sequelize.query("DROP TRIGGER test_refuse_kyc_audit ON user_audit_logs");
      }
      expect((await kyc.status(callerOf(userId))).status).to.equal("NOT_SUBMITTED");
    });

    it("shows the full number to staff only", async () => {
      const number = passportNumber();
      const { userId, record } = await submitted(passport(number));
      expect(record).to.not.have.property("documentNumber");
      const reviewed = await kyc.review(staff(), { userId, decision: "APPROVE", rejectionReason: "" });
      expect(reviewed).to.include({ documentNumber: number, documentNumberMasked: maskDocumentNumber(number) });
      const listed = await kyc.list(staff(), { status: "APPROVED", pageSize: 100, pageToken: "" });
      expect(listed.submissions.find((s) => s.userId === userId)).to.include({ documentNumber: number });
    });

    it("never writes a document number to the logs", async () => {
      const numbers = [passportNumber(), passportNumber()];
      const { userId } = await submitted(passport(numbers[0]));
      await kyc.review(staff(), { userId, decision: "REJECT", rejectionReason: "Unreadable" });
      await kyc.submit(callerOf(userId), passport(numbers[1]));
      await rejection(kyc.submit(callerOf(userId), passport(numbers[1])));
      await kyc.review(staff(), { userId, decision: "APPROVE", rejectionReason: "" });
      await kyc.list(staff(), { pageSize: 100, pageToken: "" });
      const logged = logLines.join("");
      expect(logged).to.include(userId); // the domain does log these events…
      for (const n of numbers) expect(logged).to.not.include(n); // …without the number
    });
  });

  describe("ListKycSubmissions", () => {
    let lister: Caller;
    const ids: Record<"PENDING" | "REJECTED" | "APPROVED", string[]> = { PENDING: [], REJECTED: [], APPROVED: [] };

    before(async () => {
      // A database of its own, so that the expected lists are exact.
      const own = await openStores({ databaseUrl: uniqueDatabaseUrl("kyclist"), redisUrl: REDIS_URL, redisKeyPrefix: uniqueRedisPrefix("kyclist") }, createLogger("silent"));
      const ownKyc = createKycDomain({ ...own, logger: createLogger("silent") });
      const listerId = (await own.models.User.create({ username: `lister_${randomUUID().slice(0, 8)}`, isStaff: true })).id;
      lister = callerOf(listerId, ["staff"]);
      for (let i = 0; i < 12; i++) {
        const userId = (await own.models.User.create({ username: `l_${i}_${randomUUID().slice(0, 8)}` })).id;
        await ownKyc.submit(callerOf(userId), passport());
        const status = i % 4 === 1 ? "REJECTED" : i % 4 === 3 ? "APPROVED" : "PENDING";
        if (status !== "PENDING") await ownKyc.review(lister, { userId, decision: status === "REJECTED" ? "REJECT" : "APPROVE", rejectionReason: status === "REJECTED" ? "no" : "" });
        ids[status].push(userId);
      }
      await own.models.User.create({ username: `never_${randomUUID().slice(0, 8)}` }).then((u) => own.models.UserKyc.create({ userId: u.id }));
      // Submission times that differ by microseconds only, and a tie broken by user id: a
      // cursor that lost precision would skip or repeat rows.
      await own.sequelize.query(`
        UPDATE user_kyc SET submitted_at = '2024-05-01T10:00:00.000001Z'::timestamptz + (ord % 3) * interval '1 microsecond'
        FROM (SELECT user_id AS id, row_number() OVER (ORDER BY created_at, user_id) AS ord FROM user_kyc) o
        WHERE user_kyc.user_id = o.id AND status <> 'NOT_SUBMITTED'`);
      expected = await own.sequelize.query<{ user_id: string; status: string }>(
        "SELECT user_id, status FROM user_kyc WHERE status <> 'NOT_SUBMITTED' ORDER BY submitted_at, user_id",
        { type: QueryTypes.SELECT },
      );
      list = (input) => ownKyc.list(lister, input);
      closeOwn = () => own.close();
    });
    after(() => closeOwn?.());

    let expected: Array<{ user_id: string; status: string }> = [];
    let list: (input: ListKycInput) => Promise<KycPage>;
    let closeOwn: (() => Promise<void>) | undefined;

    async function all(status: "PENDING" | "REJECTED" | "APPROVED" | undefined, pageSize: number): Promise<{ ids: string[]; pages: number }> {
      const seen: string[] = [];
      let pageToken = "";
      let pages = 0;
      do {
        const page = await list({ status, pageSize, pageToken });
        pages++;
        expect(page.submissions.length).to.be.at.most(pageSize);
        for (const s of page.submissions) {
          if (status) expect(s.status).to.equal(status);
          seen.push(s.userId);
        }
        pageToken = page.nextPageToken;
      } while (pageToken);
      return { ids: seen, pages };
    }

    it("pages through one status, oldest submission first, with no gap or repeat", async () => {
      const pending = expected.filter((r) => r.status === "PENDING").map((r) => r.user_id);
      expect(pending).to.have.length(6).and.to.have.members(ids.PENDING);
      const result = await all("PENDING", 4);
      expect(result).to.deep.equal({ ids: pending, pages: 2 });
      expect(await all("PENDING", 1)).to.deep.equal({ ids: pending, pages: 6 });
      expect((await all("REJECTED", 2)).ids).to.deep.equal(expected.filter((r) => r.status === "REJECTED").map((r) => r.user_id));
    });

    it("lists every submitted record without a filter, never NOT_SUBMITTED ones", async () => {
      const result = await all(undefined, 5);
      expect(result.ids).to.deep.equal(expected.map((r) => r.user_id));
      expect(result.pages).to.equal(3);
    });

    it("defaults page_size to 20 and ends with an empty token", async () => {
      const page = await list({ pageSize: 0, pageToken: "" });
      expect(page.submissions).to.have.length(12);
      expect(page.nextPageToken).to.equal("");
    });

    it("rejects bad page sizes, bad tokens, a token of another filter and the NOT_SUBMITTED filter", async () => {
      const first = await list({ status: "PENDING", pageSize: 2, pageToken: "" });
      const bad: Array<[ListKycInput, string]> = [
        [{ pageSize: 101, pageToken: "" }, "page_size"],
        [{ pageSize: -1, pageToken: "" }, "page_size"],
        [{ pageSize: 2, pageToken: "garbage" }, "page_token"],
        [{ pageSize: 2, pageToken: Buffer.from('["", "1", "x"]').toString("base64url") }, "page_token"],
        [{ status: "APPROVED", pageSize: 2, pageToken: first.nextPageToken }, "page_token"],
        [{ pageSize: 2, pageToken: first.nextPageToken }, "page_token"],
        [{ status: "NOT_SUBMITTED", pageSize: 2, pageToken: "" }, "status"],
      ];
      for (const [input, field] of bad) {
        const err = await rejection(list(input));
        expect(err.kind, JSON.stringify(input)).to.equal("invalid_argument");
        expect(err.extra.violations?.map((v) => v.field)).to.deep.equal([field]);
      }
    });
  });
});
