// Many instances on the same stores (DESIGN §9): two ROLE=api and two ROLE=worker processes,
// started as `npm start` runs them, sharing one database, one Redis prefix and one secret.
// What one API instance decides (a logout, a revoked session, a reused refresh token, an OTP
// cooldown) holds on the other; a job enqueued once runs on exactly one worker; worker-only
// instances answer the health probes.
import { expect } from "chai";
import { Code } from "@connectrpc/connect";
import { OtpPurpose, UserAuthService } from "../../gen/identity/v1/auth_pb.js";
import { openJobQueue, type JobClient } from "../../src/jobs/queue.js";
import { createLogger } from "../../src/logger.js";
import { bearer, clientFor, signUp, testPhone } from "../support/clients.js";
import { codeOf } from "../support/failures.js";
import { startedUrl, startMain, waitFor, type MainProcess } from "../support/main-process.js";
import { testServerEnv } from "../support/server.js";

interface Instance {
  proc: MainProcess;
  url: string;
}

/** The JSON log lines of a process (its stdout), skipping anything else. */
function logLines(proc: MainProcess): Array<Record<string, unknown>> {
  return proc
    .output()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("many instances on the same stores (2 × ROLE=api, 2 × ROLE=worker)", function () {
  this.timeout(120_000);
  const env = testServerEnv({ LOG_LEVEL: "info", PORT: "0" });
  const procs: MainProcess[] = [];
  let api: Instance[] = [];
  let workers: Instance[] = [];
  let jobs: JobClient | undefined;

  async function start(role: "api" | "worker"): Promise<Instance> {
    const proc = startMain({ ...env, ROLE: role });
    procs.push(proc);
    return { proc, url: await startedUrl(proc) };
  }

  before(async () => {
    // The first one creates and migrates the database; the others then start side by side.
    const first = await start("api");
    const [second, w1, w2] = await Promise.all([start("api"), start("worker"), start("worker")]);
    api = [first, second];
    workers = [w1, w2];
  });
  after(async () => {
    await jobs?.close();
    for (const p of procs) if (p.child.exitCode === null) p.child.kill("SIGTERM");
    await Promise.all(procs.map((p) => p.exited));
  });

  it("worker-only instances answer /healthz and /readyz (PostgreSQL, Redis and the job worker checked)", async () => {
    for (const w of workers) {
      expect(await getJson(`${w.url}/healthz`)).to.deep.equal({ status: 200, body: { status: "ok" } });
      // Ready once the job worker has started (it starts after the listener).
      let ready = await getJson(`${w.url}/readyz`);
      for (let i = 0; ready.status !== 200 && i < 100; i++) {
        await new Promise((r) => setTimeout(r, 100));
        ready = await getJson(`${w.url}/readyz`);
      }
      expect(ready).to.deep.equal({ status: 200, body: { status: "ok", checks: { postgres: "ok", redis: "ok", jobs: "ok" } } });
      // Probes only: no API on a worker.
      expect((await fetch(`${w.url}/api/auth/me`)).status).to.equal(404);
    }
  });

  it("a logout on one API instance is refused on the other", async () => {
    const user = await signUp(api[0]!.url);
    const [a, b] = api.map((i) => clientFor(UserAuthService, i.url));
    // Instance B has seen the token as valid (any cached "not denied" answer included).
    expect((await b!.getMe({}, bearer(user.accessToken))).user?.id).to.equal(user.userId);
    await a!.logout({}, bearer(user.accessToken));
    expect(await codeOf(b!.getMe({}, bearer(user.accessToken)))).to.equal(Code.Unauthenticated);
    expect(await codeOf(b!.refreshToken({ refreshToken: user.refreshToken }))).to.equal(Code.Unauthenticated);
  });

  it("a session revoked on one API instance is refused on the other", async () => {
    const user = await signUp(api[0]!.url);
    const [a, b] = api.map((i) => clientFor(UserAuthService, i.url));
    // A second session of the same user, signed in through instance B.
    const other = await signUp(api[1]!.url);
    expect((await b!.getMe({}, bearer(user.accessToken))).user?.id).to.equal(user.userId);
    await a!.revokeSession({ sessionId: user.sessionId }, bearer(user.accessToken));
    expect(await codeOf(b!.getMe({}, bearer(user.accessToken)))).to.equal(Code.Unauthenticated);
    expect(await codeOf(b!.refreshToken({ refreshToken: user.refreshToken }))).to.equal(Code.Unauthenticated);
    // Another user's session is untouched.
    expect((await b!.getMe({}, bearer(other.accessToken))).user?.id).to.equal(other.userId);
  });

  it("a refresh token reused on the other API instance is detected: the whole session is revoked", async () => {
    const user = await signUp(api[0]!.url);
    const [a, b] = api.map((i) => clientFor(UserAuthService, i.url));
    const rotated = await a!.refreshToken({ refreshToken: user.refreshToken });
    // Outside the rotation's grace window the old token is a reuse (see sessions.ts); a fresh
    // rotation's pair may be handed out again within it, so rotate once more first.
    const again = await b!.refreshToken({ refreshToken: rotated.refreshToken });
    expect(await codeOf(b!.refreshToken({ refreshToken: user.refreshToken }))).to.equal(Code.Unauthenticated);
    // The reuse revoked the session: its latest tokens are refused on both instances.
    expect(await codeOf(a!.refreshToken({ refreshToken: again.refreshToken }))).to.equal(Code.Unauthenticated);
    expect(await codeOf(a!.getMe({}, bearer(again.accessToken)))).to.equal(Code.Unauthenticated);
  });

  it("the OTP resend cooldown set on one API instance holds on the other", async () => {
    const phone = testPhone();
    const [a, b] = api.map((i) => clientFor(UserAuthService, i.url));
    await a!.requestOtp({ identifier: phone, purpose: OtpPurpose.REGISTER });
    expect(await codeOf(b!.requestOtp({ identifier: phone, purpose: OtpPurpose.REGISTER }))).to.equal(Code.ResourceExhausted);
  });

  it("jobs enqueued once each run exactly once across the two workers", async () => {
    jobs = await openJobQueue({ config: { databaseDirectUrl: env.DATABASE_URL!, mongodbUri: undefined }, logger: createLogger("silent") });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(String((await jobs.agenda.now("update-user-last-activity", {})).attrs._id));
    const finished = () =>
      workers.flatMap((w, index) => logLines(w.proc).filter((l) => l.msg === "job finished" && ids.includes(String(l.jobId))).map((l) => ({ worker: index, jobId: String(l.jobId) })));
    await waitFor(() => new Set(finished().map((f) => f.jobId)).size === ids.length, 60_000);
    // A second run of the same job would start right away (both workers are woken by the
    // same notification): give it a moment to show up.
    await new Promise((r) => setTimeout(r, 1_500));
    const runs = finished();
    expect(runs.map((r) => r.jobId).sort()).to.deep.equal([...ids].sort());
    expect(logLines(workers[0]!.proc).concat(logLines(workers[1]!.proc)).filter((l) => l.msg === "job failed")).to.deep.equal([]);
  });
});
