// The job worker on a real job store: scheduling, one run per due job with two workers,
// graceful stop, enqueueing from an API-only instance, the outbox wake-up, the status view.
// Runs on the PostgreSQL job store always, and the same suite on MongoDB when MONGODB_URI
// points at a server (none can run on the CI machines; the suite then says it is skipped).
import { expect } from "chai";
import { MongoClient } from "mongodb";
import { QueryTypes } from "sequelize";
import { loadConfig, type Config } from "../../src/config.js";
import { recordUserChange } from "../../src/domain/outbox.js";
import { cleanupExpiredAuditLogs } from "../../src/jobs/cleanup-expired-audit-logs.js";
import { JobInterrupted, type JobContext, type JobSpec } from "../../src/jobs/context.js";
import type { JobName } from "../../src/jobs/names.js";
import { openJobQueue } from "../../src/jobs/queue.js";
import { JOBS } from "../../src/jobs/registry.js";
import { readJobsStatus } from "../../src/jobs/status.js";
import { openJobStore } from "../../src/jobs/store.js";
import { startWorker, type Worker } from "../../src/jobs/worker.js";
import { createLogger } from "../../src/logger.js";
import { createNotifier, type Notifier } from "../../src/notify/index.js";
import { openStores, type Stores } from "../../src/store/index.js";
import { REDIS_URL, RUN_ID, uniqueDatabaseUrl, uniqueRedisPrefix } from "../support/env.js";
import { startFakeWebhook, type FakeWebhook } from "../support/fake-webhook.js";

const logger = createLogger("silent");
const TUNING = { processEveryMs: 100, lockLifetimeMs: 3_000 };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 8_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const mongoDatabases: string[] = [];
let mongoCounter = 0;

/** MONGODB_URI with a database of its own for one test (dropped at the end). */
function uniqueMongoUri(base: string): string {
  const name = `identity_t_${RUN_ID}_${++mongoCounter}`;
  mongoDatabases.push(name);
  const m = /^(mongodb(?:\+srv)?:\/\/[^/?]+)(\/[^?]*)?(\?.*)?$/.exec(base);
  if (!m) throw new Error("MONGODB_URI is not a mongodb:// URI");
  return `${m[1]}/${name}${m[3] ?? ""}`;
}

interface Harness {
  config: Config;
  stores: Stores;
  notifier: Notifier;
  sql(sql: string, bind?: unknown[]): Promise<Array<Record<string, any>>>;
  start(jobs?: readonly JobSpec[]): Promise<Worker>;
  close(): Promise<void>;
}

async function harness(mongoUri: string | undefined, extraEnv: Record<string, string> = {}): Promise<Harness> {
  const config = loadConfig({
    NODE_ENV: "test",
    LOG_LEVEL: "silent",
    DATABASE_URL: uniqueDatabaseUrl("jobsw"),
    REDIS_URL,
    REDIS_KEY_PREFIX: uniqueRedisPrefix("jobsw"),
    SHUTDOWN_GRACE_SECONDS: "1",
    ...(mongoUri ? { MONGODB_URI: uniqueMongoUri(mongoUri) } : {}),
    ...extraEnv,
  });
  const stores = await openStores(config, logger);
  const notifier = createNotifier(config, logger);
  const workers: Worker[] = [];
  return {
    config,
    stores,
    notifier,
    sql: (sql, bind = []) => stores.sequelize.query<Record<string, any>>(sql, { bind, type: QueryTypes.SELECT }),
    async start(jobs) {
      const worker = await startWorker({ config, logger, stores, notifier, tuning: TUNING, jobs });
      workers.push(worker);
      return worker;
    },
    async close() {
      await Promise.allSettled(workers.map((w) => w.stop()));
      await notifier.close();
      await stores.close();
    },
  };
}

/** A stand-in job that records each run in probe_runs (the name is borrowed from a real job). */
function probe(name: JobName, worker: string, body: (ctx: JobContext, data: unknown) => Promise<void> = async () => sleep(200), every?: string): JobSpec {
  return {
    name,
    every,
    async run(ctx, data) {
      await ctx.sequelize.query("INSERT INTO probe_runs (worker, data) VALUES ($1, $2)", { bind: [worker, JSON.stringify(data ?? null)] });
      await body(ctx, data);
      await ctx.sequelize.query("INSERT INTO probe_runs (worker, data, phase) VALUES ($1, $2, 'done')", { bind: [worker, JSON.stringify(data ?? null)] });
      return {};
    },
  };
}

function jobStoreSuite(label: string, mongoUri: string | undefined) {
  describe(`job worker on the ${label} job store`, function () {
    this.timeout(30_000);
    let h: Harness;
    beforeEach(async () => {
      h = await harness(mongoUri);
      await h.sql("CREATE TABLE probe_runs (id serial PRIMARY KEY, worker text NOT NULL, data jsonb, phase text NOT NULL DEFAULT 'start', at timestamptz NOT NULL DEFAULT clock_timestamp())");
    });
    afterEach(() => h.close());

    const starts = () => h.sql("SELECT worker, data, at FROM probe_runs WHERE phase = 'start' ORDER BY id");
    const dones = () => h.sql("SELECT worker, data FROM probe_runs WHERE phase = 'done' ORDER BY id");

    it("declares each recurring job once, however many workers start", async () => {
      const [a] = await Promise.all([h.start(), h.start()]);
      const { jobs } = await a.agenda.queryJobs({});
      for (const spec of JOBS) {
        const rows = jobs.filter((j) => j.name === spec.name && j.type === "single");
        expect(rows, spec.name).to.have.length(1);
        expect(String(rows[0]!.repeatInterval)).to.equal(spec.every);
      }
    });

    it("runs each due job on one worker only", async () => {
      const name: JobName = "generate-user-analytics-report";
      const [w1] = await Promise.all([h.start([probe(name, "w1")]), h.start([probe(name, "w2")])]);
      await w1.queue.enqueue(name, { n: 0 });
      await until("the first run", async () => (await dones()).length === 1);
      await sleep(600);
      expect(await starts()).to.have.length(1);

      for (let n = 1; n <= 6; n++) await w1.queue.enqueue(name, { n });
      await until("six more runs", async () => (await dones()).length === 7);
      await sleep(600);
      const runs = await starts();
      expect(runs.map((r) => r.data.n).sort()).to.deep.equal([0, 1, 2, 3, 4, 5, 6]);
    });

    it("runs a recurring job once per due time across workers", async () => {
      const name: JobName = "update-user-last-activity";
      await Promise.all([h.start([probe(name, "w1", () => sleep(100), "1 second")]), h.start([probe(name, "w2", () => sleep(100), "1 second")])]);
      await sleep(3_300);
      const runs = await starts();
      expect(runs.length).to.be.within(2, 4);
      for (let i = 1; i < runs.length; i++) {
        const gap = (runs[i]!.at as Date).getTime() - (runs[i - 1]!.at as Date).getTime();
        expect(gap, "two runs for one due time").to.be.above(700);
      }
    });

    it("stop() interrupts a running job and releases it: another worker takes it at once", async () => {
      const name: JobName = "generate-user-analytics-report";
      const interruptible = async (ctx: JobContext) => {
        while (!ctx.signal.aborted) await sleep(20);
        throw new JobInterrupted();
      };
      const w1 = await h.start([probe(name, "w1", interruptible)]);
      await w1.queue.enqueue(name, { n: 1 });
      await until("w1 running the job", async () => (await starts()).length === 1);
      const w2 = await h.start([probe(name, "w2")]);

      const t0 = Date.now();
      await w1.stop();
      expect(Date.now() - t0, "stop() returned promptly").to.be.below(1_500);
      const { jobs } = await w2.agenda.queryJobs({ name });
      expect(jobs).to.have.length(1);
      expect(jobs[0]!.lockedAt ?? null, "not left locked").to.equal(null);

      await until("w2 finishing the job", async () => (await dones()).length === 1, 3_000);
      expect((await dones())[0]).to.deep.include({ worker: "w2" });
    });

    it("stop() requeues a job that outlives the grace period", async () => {
      const name: JobName = "generate-user-analytics-report";
      const w1 = await h.start([probe(name, "w1", () => sleep(4_000))]);
      await w1.queue.enqueue(name, { n: 1 });
      await until("w1 running the job", async () => (await starts()).length === 1);
      const w2 = await h.start([probe(name, "w2", async () => undefined)]);
      const t0 = Date.now();
      await w1.stop();
      expect(Date.now() - t0).to.be.within(900, 2_500);
      await until("w2 taking the job over", async () => (await dones()).some((r) => r.worker === "w2"), 3_000);
      await w2.stop();
    });

    it("runs enqueued jobs with their effect, and the status shows states and failures", async () => {
      const failing: JobSpec = {
        name: "send-kyc-verification-reminder",
        async run() {
          throw new Error("boom");
        },
      };
      const worker = await h.start([cleanupExpiredAuditLogs, failing]);
      await h.sql(`INSERT INTO user_audit_logs (action, entity_type, created_at) SELECT 'old', 'user', now() - interval '2 years' FROM generate_series(1, 5)`);
      await worker.queue.enqueue("cleanup-expired-audit-logs");
      await worker.queue.enqueue("send-kyc-verification-reminder");
      await until("the audit rows to go", async () => (await h.sql("SELECT 1 FROM user_audit_logs")).length === 0);

      const status = await until("both jobs to settle", async () => {
        const s = await readJobsStatus({ agenda: worker.agenda, storeKind: mongoUri ? "mongodb" : "postgres", sequelize: h.stores.sequelize });
        const byName = Object.fromEntries(s.jobs.filter((j) => !j.repeat).map((j) => [j.name, j]));
        return byName["cleanup-expired-audit-logs"]?.state === "completed" && byName["send-kyc-verification-reminder"]?.failCount ? { s, byName } : undefined;
      });
      expect(status.s.store).to.equal(mongoUri ? "mongodb" : "postgres");
      expect(status.byName["cleanup-expired-audit-logs"]!.lastFinishedAt).to.be.instanceOf(Date);
      expect(status.byName["send-kyc-verification-reminder"]).to.include({ failCount: 1, failReason: "boom" });
      const recurring = status.s.jobs.find((j) => j.name === "cleanup-expired-audit-logs" && j.repeat);
      expect(recurring).to.include({ repeat: "15 3 * * *" });
    });

    it("an API-only queue enqueues without running anything; a worker runs it later", async () => {
      const client = await openJobQueue({ config: h.config, logger });
      try {
        await h.sql(`INSERT INTO user_audit_logs (action, entity_type, created_at) VALUES ('old', 'user', now() - interval '2 years')`);
        await client.enqueue("cleanup-expired-audit-logs");
        await sleep(500);
        const { jobs } = await client.agenda.queryJobs({ name: "cleanup-expired-audit-logs" });
        expect(jobs).to.have.length(1);
        expect(jobs[0]!.lastRunAt ?? null).to.equal(null);
        expect(await h.sql("SELECT 1 FROM user_audit_logs")).to.have.length(1);

        await h.start([cleanupExpiredAuditLogs]);
        await until("the worker to run it", async () => (await h.sql("SELECT 1 FROM user_audit_logs")).length === 0);
      } finally {
        await client.close();
      }
    });

    describe("webhook sync", () => {
      let receiver: FakeWebhook;
      let hooked: Harness;
      before(async () => {
        receiver = await startFakeWebhook();
        hooked = await harness(mongoUri, { WEBHOOK_URLS: receiver.url, WEBHOOK_SECRET: "s3cret" });
      });
      after(async () => {
        await hooked.close();
        await receiver.close();
      });

      it("is woken by a committed outbox row, not only by its schedule", async () => {
        await hooked.start();
        await until("the start-up sync", async () => (await hooked.sql("SELECT 1 FROM outbox")).length === 0);
        await sleep(500);
        const [user] = await hooked.sql(`INSERT INTO users (username, email) VALUES ('hooked', 'hooked@example.com') RETURNING id`);
        await hooked.stores.sequelize.transaction((t) => recordUserChange(hooked.stores.models, t, user!.id as string, "user.registered"));
        const t0 = Date.now();
        await receiver.waitFor(1, 10_000);
        expect(Date.now() - t0, "well before the 30-second schedule").to.be.below(8_000);
        expect(JSON.parse(receiver.requests[0]!.body)).to.deep.include({ user_id: user!.id, reasons: ["user.registered"] });
      });
    });
  });
}

jobStoreSuite("PostgreSQL", undefined);
if (process.env.MONGODB_URI) {
  jobStoreSuite("MongoDB", process.env.MONGODB_URI);
  after(async function () {
    this.timeout(30_000);
    if (process.env.TEST_KEEP_STATE) return;
    const client = new MongoClient(process.env.MONGODB_URI!);
    await client.connect();
    try {
      for (const name of mongoDatabases) await client.db(name).dropDatabase();
    } finally {
      await client.close();
    }
  });
} else {
  describe.skip("MongoDB job store suite skipped: MONGODB_URI is not set", () => {
    it("runs the job worker suite on the MongoDB job store (set MONGODB_URI=mongodb://host:27017 to run it)");
  });
}

describe("job store", () => {
  it("reports an unreachable store as a rejection, never an unhandled one", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      let error: Error | undefined;
      await openJobStore({ databaseDirectUrl: "postgres://postgres@127.0.0.1:1/nowhere" }, logger).catch((e: Error) => (error = e));
      expect(error?.message).to.match(/^job store \(PostgreSQL\) is unavailable/);
      await sleep(100);
      expect(unhandled).to.deep.equal([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });
});
