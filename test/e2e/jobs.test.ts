// Jobs end to end: a user registered through the real server reaches a webhook receiver
// through the outbox and a worker on the same stores; the operator commands
// (`npm run job`, `npm run jobs:status`) run as processes against those stores.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect } from "chai";
import { QueryTypes } from "sequelize";
import { DocumentType, KycService } from "../../gen/identity/v1/kyc_pb.js";
import { ProfileService } from "../../gen/identity/v1/profile_pb.js";
import { startWorker, type Worker } from "../../src/jobs/worker.js";
import { verifyWebhookSignature, SIGNATURE_HEADER, TIMESTAMP_HEADER } from "../../src/jobs/webhook.js";
import { createLogger } from "../../src/logger.js";
import { createNotifier, type Notifier } from "../../src/notify/index.js";
import { bearer, clientFor, signUp } from "../support/clients.js";
import { startFakeWebhook, type FakeWebhook } from "../support/fake-webhook.js";
import { startTestServer, type TestServer } from "../support/server.js";

const tsx = join(process.cwd(), "node_modules/.bin/tsx");
const execute = promisify(execFile);
const SECRET = "e2e-webhook-secret";

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(script: string, args: string[], env: Record<string, string>): Promise<Ran> {
  try {
    const { stdout, stderr } = await execute(tsx, [script, ...args], { env: { ...process.env, ...env }, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function waitUntil(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("jobs end to end", function () {
  this.timeout(60_000);
  let receiver: FakeWebhook;
  let server: TestServer;
  let worker: Worker;
  let notifier: Notifier;

  before(async () => {
    receiver = await startFakeWebhook({ failFirst: 1 });
    server = await startTestServer({ WEBHOOK_URLS: receiver.url, WEBHOOK_SECRET: SECRET, WEBHOOK_BACKOFF_SECONDS: "1" });
    const logger = createLogger("silent");
    notifier = createNotifier(server.app.config, logger);
    worker = await startWorker({ config: server.app.config, logger, stores: server.app.stores, notifier, tuning: { processEveryMs: 200, lockLifetimeMs: 5_000 } });
  });
  after(async () => {
    await worker?.stop();
    await notifier?.close();
    await server?.close();
    await receiver?.close();
  });

  it("Register writes an outbox row in its transaction; the worker delivers the signed snapshot, retrying a failure", async () => {
    const user = await signUp(server.url, { fullName: "Webhook Person" });
    await receiver.waitFor(1, 10_000);
    expect(receiver.requests[0]!.status).to.equal(500);
    // The retry is due after 1 s and runs at the next sync (schedule, or the next wake-up):
    // once the worker has recorded the failure, make it due now and wake a sync.
    const failed = async () => {
      const [row] = await server.app.stores.sequelize.query<{ n: number }>("SELECT count(*)::int AS n FROM webhook_deliveries WHERE user_id = :id AND attempts >= 1", {
        replacements: { id: user.userId },
        type: QueryTypes.SELECT,
      });
      return row!.n > 0;
    };
    const until = Date.now() + 10_000;
    while (!(await failed())) {
      if (Date.now() > until) throw new Error("the failed attempt was never recorded");
      await new Promise((r) => setTimeout(r, 50));
    }
    await server.app.stores.sequelize.query("UPDATE webhook_deliveries SET next_attempt_at = now()");
    await worker.queue.enqueue("sync-user-data-with-external-services");
    await receiver.waitFor(2, 10_000);
    const delivered = receiver.requests[1]!;
    expect(delivered.status).to.equal(204);
    expect(verifyWebhookSignature(SECRET, { timestamp: delivered.headers[TIMESTAMP_HEADER]!, signature: delivered.headers[SIGNATURE_HEADER]!, body: delivered.body })).to.equal(true);
    const payload = JSON.parse(delivered.body) as { user_id: string; reasons: string[]; user: { username: string; phone_number: string; profile: { full_name: string } } };
    expect(payload).to.deep.include({ user_id: user.userId, reasons: ["user.registered"] });
    expect(payload.user).to.include({ username: user.username, phone_number: user.phone });
    expect(payload.user.profile.full_name).to.equal("Webhook Person");
  });

  it("profile and KYC changes reach the receiver through the same outbox", async () => {
    const user = await signUp(server.url);
    const auth = bearer(user.accessToken);
    const delivered = () => receiver.requests.filter((r) => r.status === 204).map((r) => JSON.parse(r.body) as { user_id: string; reasons: string[]; user: { profile: { address: string } } });
    const mine = () => delivered().filter((p) => p.user_id === user.userId);
    await waitUntil(() => mine().length === 1);
    await clientFor(ProfileService, server.url).updateProfile({ address: "1 Outbox Lane" }, auth);
    await waitUntil(() => mine().length === 2);
    expect(mine()[1]).to.deep.include({ reasons: ["profile.updated"] });
    expect(mine()[1]!.user.profile.address).to.equal("1 Outbox Lane");
    await clientFor(KycService, server.url).submitKyc({ documentType: DocumentType.PASSPORT, documentNumber: "P7654321", documentFrontUrl: "https://docs.example.com/p.jpg" }, auth);
    await waitUntil(() => mine().length === 3);
    expect(mine()[2]).to.deep.include({ reasons: ["kyc.submitted"] });
    expect(JSON.stringify(mine()[2])).to.not.include("P7654321");
  });

  it("a ROLE=all instance serves the API and runs the worker, and stops both", async () => {
    const both = await startTestServer({ ROLE: "all" }, server.env);
    expect(both.app.worker).to.not.equal(undefined);
    const user = await signUp(both.url);
    expect(user.userId).to.be.a("string");
    await both.close();
  });

  it("npm run job runs one job now and prints a one-line JSON summary", async () => {
    const ok = await cli("src/cli/job.ts", ["generate-user-analytics-report", "--from", "2026-11-01", "--to", "2026-11-08"], server.env);
    expect(ok.code, ok.stderr).to.equal(0);
    expect(ok.stdout.trim().split("\n")).to.have.length(1);
    expect(JSON.parse(ok.stdout)).to.deep.include({ job: "generate-user-analytics-report", ok: true, periodStart: "2026-11-01T00:00:00.000Z", periodEnd: "2026-11-08T00:00:00.000Z" });

    const failed = await cli("src/cli/job.ts", ["generate-user-analytics-report", "--from", "2026-11-08"], server.env);
    expect(failed.code).to.equal(1);
    expect(JSON.parse(failed.stdout)).to.deep.equal({ job: "generate-user-analytics-report", ok: false, error: "--from and --to go together" });

    const unknown = await cli("src/cli/job.ts", ["no-such-job"], server.env);
    expect(unknown.code).to.equal(2);
    expect(unknown.stderr).to.match(/unknown job "no-such-job"[\s\S]*cleanup-expired-audit-logs/);
  });

  it("npm run jobs:status lists the job store's jobs and the dead letters", async () => {
    await server.app.stores.sequelize.query(
      `INSERT INTO webhook_deliveries (user_id, endpoint, status, attempts, last_error) VALUES (gen_random_uuid(), 'http://127.0.0.1:9/gone', 'dead', 8, 'HTTP 503')`,
    );
    const json = await cli("src/cli/jobs-status.ts", ["--json"], server.env);
    expect(json.code, json.stderr).to.equal(0);
    const status = JSON.parse(json.stdout) as { store: string; jobs: Array<{ name: string; repeat: string | null; state: string }>; deadLetterCount: number; deadLetters: Array<{ lastError: string }> };
    expect(status.store).to.equal("postgres");
    expect(status.jobs.filter((j) => j.repeat).map((j) => j.name)).to.have.members([
      "cleanup-expired-audit-logs",
      "create-audit-log-partitions",
      "deactivate-inactive-users",
      "update-user-last-activity",
      "send-profile-completion-reminder",
      "send-kyc-verification-reminder",
      "generate-user-analytics-report",
      "sync-user-data-with-external-services",
      "purge-deleted-accounts",
    ]);
    expect(status.deadLetterCount).to.equal(1);
    expect(status.deadLetters[0]).to.include({ lastError: "HTTP 503" });

    const table = await cli("src/cli/jobs-status.ts", [], server.env);
    expect(table.stdout).to.match(/^job store: postgres/);
    expect(table.stdout).to.match(/NAME\s+STATE\s+REPEAT\s+NEXT RUN/);
    expect(table.stdout).to.match(/1 dead-lettered/);
    expect(table.stdout).to.match(/http:\/\/127\.0\.0\.1:9\/gone\s+8\s+\S+\s+HTTP 503/);
  });
});
