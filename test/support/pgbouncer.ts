// A PgBouncer of the test's own in front of the shared PostgreSQL (127.0.0.1:5432), in
// transaction pooling mode, the way managed PostgreSQL is usually reached:
//
//   const bouncer = await startPgBouncer();      // undefined where pgbouncer is not installed
//   bouncer.url(directUrl)                       // the same URL, through the pooler's port
//   await bouncer.serverPids()                   // PostgreSQL backends PgBouncer holds (SHOW SERVERS)
//   await bouncer.close();                       // stopped and its directory removed
//
// Config and auth file live in a temp dir; any database name is forwarded (`* =`), auth is
// trust, no Unix socket. PgBouncer refuses to run as root: as root it runs as `postgres`
// through runuser. A small server pool per database, so that concurrent clients share
// server connections (which is what breaks session state).
import { execFile } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { freePort } from "./private-redis.js";

const run = promisify(execFile);
const BINARY = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"].find((p) => existsSync(p));

export interface PgBouncer {
  readonly port: number;
  /** `directUrl` with its host and port replaced by the pooler's. */
  url(directUrl: string): string;
  /** Process ids of the PostgreSQL backends behind PgBouncer's server connections (admin console, SHOW SERVERS). */
  serverPids(): Promise<number[]>;
  close(): Promise<void>;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startPgBouncer(options: { upstreamPort?: number; poolSize?: number } = {}): Promise<PgBouncer | undefined> {
  if (!BINARY) return undefined;
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync("/tmp/pgbouncer-");
  const port = await freePort();
  const pidfile = join(dir, "pgbouncer.pid");
  writeFileSync(join(dir, "users.txt"), `"postgres" ""\n`);
  writeFileSync(
    join(dir, "pgbouncer.ini"),
    [
      "[databases]",
      `* = host=127.0.0.1 port=${options.upstreamPort ?? 5432}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      "admin_users = postgres",
      `auth_file = ${join(dir, "users.txt")}`,
      "pool_mode = transaction",
      `default_pool_size = ${options.poolSize ?? 4}`,
      "max_client_conn = 500",
      `logfile = ${join(dir, "pgbouncer.log")}`,
      `pidfile = ${pidfile}`,
      "",
    ].join("\n"),
  );
  if (asRoot) {
    const [{ stdout: uid }, { stdout: gid }] = await Promise.all([run("id", ["-u", "postgres"]), run("id", ["-g", "postgres"])]);
    for (const f of ["", "users.txt", "pgbouncer.ini"]) chownSync(join(dir, f), Number(uid.trim()), Number(gid.trim()));
  }
  const args = ["-d", join(dir, "pgbouncer.ini")];
  const log = () => (existsSync(join(dir, "pgbouncer.log")) ? readFileSync(join(dir, "pgbouncer.log"), "utf8") : "");

  let pid: number | undefined;
  const close = async () => {
    if (pid === undefined && existsSync(pidfile)) pid = Number(readFileSync(pidfile, "utf8").trim());
    if (pid && alive(pid)) {
      process.kill(pid, "SIGTERM");
      for (let i = 0; i < 100 && alive(pid); i++) await sleep(50);
      if (alive(pid)) process.kill(pid, "SIGKILL");
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // -d: PgBouncer forks into the background once it listens and writes its pidfile.
    await (asRoot ? run("runuser", ["-u", "postgres", "--", BINARY, ...args]) : run(BINARY, args));
    for (let i = 0; i < 100 && !existsSync(pidfile); i++) await sleep(50);
    if (!existsSync(pidfile)) throw new Error(`pgbouncer wrote no pidfile:\n${log()}`);
    pid = Number(readFileSync(pidfile, "utf8").trim());
    let up = false;
    for (let i = 0; i < 100 && !(up = await accepts(port)); i++) await sleep(50);
    if (!up) throw new Error(`pgbouncer does not listen on ${port}:\n${log()}`);
  } catch (err) {
    await close();
    throw err;
  }
  return {
    port,
    url(directUrl) {
      const u = new URL(directUrl);
      u.hostname = "127.0.0.1";
      u.port = String(port);
      return u.toString();
    },
    async serverPids() {
      // The admin console answers the simple query protocol only (a query without parameters).
      const admin = new pg.Client({ host: "127.0.0.1", port, user: "postgres", database: "pgbouncer" });
      await admin.connect();
      try {
        const { rows } = await admin.query<{ remote_pid: string | number }>("SHOW SERVERS");
        return rows.map((r) => Number(r.remote_pid));
      } finally {
        await admin.end();
      }
    },
    close,
  };
}
