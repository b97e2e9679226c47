// PostgreSQL going away under load (issue 15, points 1 and 2), with the service run as a
// process (ROLE=all: API and job worker) whose DATABASE_URL goes through a cuttable proxy:
// - terminating the test database's own backends (the jobs' LISTEN connection among them)
//   must not end the process;
// - while PostgreSQL is unreachable, calls answer `unavailable` (RetryInfo; REST 503 with
//   Retry-After), never `internal`, the outage is logged once at warn, /readyz says 503;
// - once it is back, the process serves again within 2 s and /readyz, the job worker's
//   LISTEN connection included, turns ready;
// - and the same through a real restart (pg_ctl stop -m fast / start) of a private cluster.
import { spawn, type ChildProcess } from "node:child_process";
import { expect } from "chai";
import { Code, ConnectError } from "@connectrpc/connect";
import pg from "pg";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { UserAuthService } from "../../gen/identity/v1/auth_pb.js";
import { bearer, clientFor, signUp } from "../support/clients.js";
import { PG_ADMIN_URL } from "../support/env.js";
import { testServerEnv } from "../support/server.js";
import { startPrivatePostgres, type PrivatePostgres } from "../support/private-postgres.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";

// node itself with tsx as a loader, not the tsx wrapper: a kill reaches the service (killing the
// wrapper with SIGKILL left the service running).

interface Main {
  child: ChildProcess;
  lines: () => Array<Record<string, unknown>>;
  exited: Promise<number | null>;
  exitCode: () => number | null | undefined;
}

function startMain(env: Record<string, string>): Main {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let code: number | null | undefined;
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (c) => {
      code = c;
      resolve(c);
    }),
  );
  const lines = () =>
    out
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return { raw: l };
        }
      });
  return { child, lines, exited, exitCode: () => code };
}

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("PostgreSQL outage (service process, ROLE=all)", function () {
  this.timeout(120_000);
  let proxy: TcpProxy;
  let main: Main;
  let url: string;
  let databaseName: string;
  let access: string;

  before(async () => {
    proxy = await startTcpProxy({ host: "127.0.0.1", port: Number(new URL(PG_ADMIN_URL).port || 5432) });
    const env = testServerEnv({ ROLE: "all", LOG_LEVEL: "info", PORT: "0" });
    const db = new URL(env.DATABASE_URL!);
    databaseName = db.pathname.slice(1);
    db.host = `127.0.0.1:${proxy.port}`;
    main = startMain({ ...env, DATABASE_URL: db.toString() });
    await waitFor(() => main.lines().some((l) => l.msg === "identity service started") || main.exitCode() !== undefined, 60_000, "the service to start");
    const started = main.lines().find((l) => l.msg === "identity service started");
    if (!started) throw new Error(`service did not start: ${JSON.stringify(main.lines().slice(-5))}`);
    url = started.url as string;
    access = (await signUp(url)).accessToken;
  });

  after(async () => {
    if (main && main.exitCode() === undefined) {
      main.child.kill("SIGKILL");
      await main.exited;
    }
    await proxy?.close();
  });

  const readyz = async () => {
    const res = await fetch(`${url}/readyz`);
    return { status: res.status, body: (await res.json()) as { checks: Record<string, string> } };
  };

  it("survives the termination of its database connections, the jobs' LISTEN among them", async () => {
    await waitFor(async () => (await readyz()).status === 200, 15_000, "readiness");
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    try {
      // Only the backends of this test's own database.
      const { rows } = await admin.query<{ query: string }>(
        "SELECT query, pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        [databaseName],
      );
      expect(rows.some((r) => /^LISTEN "agenda_jobs/.test(r.query))).to.equal(true, "the job store's LISTEN connection was among those terminated");
    } finally {
      await admin.end();
    }
    await sleep(1500);
    expect(main.exitCode(), "the process is still running").to.equal(undefined);
    const me = clientFor(UserAuthService, url);
    await waitFor(async () => (await me.getMe({}, bearer(access)).then(() => true, () => false)), 2000, "GetMe to answer again");
    await waitFor(async () => (await readyz()).status === 200, 10_000, "readiness after the terminations");
  });

  it("answers unavailable while PostgreSQL is unreachable, logs it once, and serves again within 2 s of its return", async () => {
    const me = clientFor(UserAuthService, url);
    const codes = new Map<string, number>();
    let restMissingRetryAfter = 0;
    let retryInfoMissing = 0;
    let stop = false;
    const count = (name: string) => codes.set(name, (codes.get(name) ?? 0) + 1);
    async function loop(): Promise<void> {
      while (!stop) {
        try {
          await me.getMe({}, bearer(access));
          count("ok");
        } catch (e) {
          const err = ConnectError.from(e);
          count(Code[err.code]);
          if (err.code === Code.Unavailable && err.findDetails(RetryInfoSchema).length === 0) retryInfoMissing++;
        }
        const res = await fetch(`${url}/api/auth/me`, { headers: { authorization: `Bearer ${access}` } });
        await res.arrayBuffer();
        count(`rest ${res.status}`);
        if (res.status === 503 && !res.headers.get("retry-after")) restMissingRetryAfter++;
      }
    }
    const logStart = main.lines().length;
    proxy.cut();
    const loops = [loop(), loop(), loop()];
    await sleep(3000);
    const notReady = await readyz();
    stop = true;
    await Promise.all(loops);
    expect(main.exitCode(), "the process is still running").to.equal(undefined);
    expect(notReady.status).to.equal(503);
    expect(notReady.body.checks.postgres).to.equal("failed");
    const outage = Object.fromEntries(codes);
    expect(outage.Unavailable ?? 0, JSON.stringify(outage)).to.be.greaterThan(0);
    expect(outage["rest 503"] ?? 0, JSON.stringify(outage)).to.be.greaterThan(0);
    expect(Object.keys(outage).filter((k) => k !== "Unavailable" && k !== "rest 503" && k !== "ok"), JSON.stringify(outage)).to.deep.equal([]);
    expect(retryInfoMissing).to.equal(0);
    expect(restMissingRetryAfter).to.equal(0);
    const logged = main.lines().slice(logStart);
    expect(logged.filter((l) => l.level === 50 || l.level === 60).map((l) => l.msg)).to.deep.equal([], "no error lines (stack traces) during the outage");
    expect(logged.filter((l) => l.msg === "store unavailable" && l.store === "postgres")).to.have.length(1);

    await proxy.restore();
    const back = Date.now();
    await waitFor(async () => (await me.getMe({}, bearer(access)).then(() => true, () => false)), 2000, "GetMe within 2 s of PostgreSQL's return");
    const servedAfterMs = Date.now() - back;
    await waitFor(async () => (await readyz()).status === 200, 10_000, "readiness after the outage");
    expect((await readyz()).body.checks).to.include({ postgres: "ok", jobs: "ok" });
    expect(main.exitCode()).to.equal(undefined);
    console.log(`      outage: ${JSON.stringify(outage)}; served again ${servedAfterMs} ms after PostgreSQL's return`);
  });
});

describe("PostgreSQL restart (private cluster, service process, ROLE=all)", function () {
  this.timeout(180_000);
  let pg: PrivatePostgres | undefined;
  let main: Main;
  let url: string;
  let access: string;

  before(async function () {
    pg = await startPrivatePostgres();
    if (!pg) {
      console.log("      private PostgreSQL cluster unavailable here (needs /usr/lib/postgresql/*/bin and root or postgres): skipped");
      this.skip();
    }
    const env = testServerEnv({ ROLE: "all", LOG_LEVEL: "info", PORT: "0" });
    main = startMain({ ...env, DATABASE_URL: pg.url("identity_restart") });
    await waitFor(() => main.lines().some((l) => l.msg === "identity service started") || main.exitCode() !== undefined, 60_000, "the service to start");
    const started = main.lines().find((l) => l.msg === "identity service started");
    if (!started) throw new Error(`service did not start: ${JSON.stringify(main.lines().slice(-5))}`);
    url = started.url as string;
    access = (await signUp(url)).accessToken;
  });

  after(async () => {
    if (main && main.exitCode() === undefined) {
      main.child.kill("SIGKILL");
      await main.exited;
    }
    await pg?.close();
  });

  it("stays up through pg_ctl stop -m fast and start, answering unavailable meanwhile, and serves within 2 s of the start", async () => {
    const me = clientFor(UserAuthService, url);
    const readyz = async () => (await fetch(`${url}/readyz`)).status;
    await waitFor(async () => (await readyz()) === 200, 15_000, "readiness");
    const codes = new Map<string, number>();
    let stop = false;
    const loops = [1, 2, 3].map(async () => {
      while (!stop) {
        const code = await me.getMe({}, bearer(access)).then(
          () => "ok",
          (e: unknown) => Code[ConnectError.from(e).code],
        );
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }
    });
    await sleep(500);
    await pg!.stop();
    await sleep(2000);
    expect(await readyz()).to.equal(503);
    await pg!.start();
    const back = Date.now();
    await waitFor(async () => (await me.getMe({}, bearer(access)).then(() => true, () => false)), 2000, "GetMe within 2 s of PostgreSQL's start");
    const servedAfterMs = Date.now() - back;
    stop = true;
    await Promise.all(loops);
    await waitFor(async () => (await readyz()) === 200, 10_000, "readiness (the job store's LISTEN included) after the restart");
    expect(main.exitCode(), "the process is still running").to.equal(undefined);
    const seen = Object.fromEntries(codes);
    expect(Object.keys(seen).filter((k) => k !== "ok" && k !== "Unavailable"), JSON.stringify(seen)).to.deep.equal([]);
    expect(seen.Unavailable ?? 0, JSON.stringify(seen)).to.be.greaterThan(0);
    console.log(`      restart: ${JSON.stringify(seen)}; served again ${servedAfterMs} ms after PostgreSQL's start`);
  });
});
