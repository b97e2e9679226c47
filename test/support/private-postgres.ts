// A PostgreSQL cluster of the test's own (initdb under /tmp, a free loopback port, trust
// auth, fsync off), for restarts that must not touch the shared server:
//
//   const pg = await startPrivatePostgres();   // undefined where it cannot run (see below)
//   pg.url("mydb")                              // postgres://postgres@127.0.0.1:<port>/mydb
//   await pg.stop();  await pg.start();  await pg.restart();   // pg_ctl -m fast
//   await pg.close();                           // stopped and its directory removed
//
// It needs Debian's server binaries (/usr/lib/postgresql/<version>/bin) and must run them as
// the `postgres` user: as root through runuser, or directly when the tests run as postgres.
// Elsewhere startPrivatePostgres() resolves to undefined, and the test should skip.
import { execFile } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./private-redis.js";

const run = promisify(execFile);

export interface PrivatePostgres {
  readonly port: number;
  url(database: string): string;
  start(): Promise<void>;
  /** pg_ctl stop -m fast: sessions are terminated (57P01), then connections are refused. */
  stop(): Promise<void>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

function binDir(): string | undefined {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  const dir = versions.map((v) => join(root, v, "bin")).find((d) => existsSync(join(d, "pg_ctl")));
  return dir;
}

export async function startPrivatePostgres(): Promise<PrivatePostgres | undefined> {
  const bin = binDir();
  const asRoot = process.getuid?.() === 0;
  if (!bin || (!asRoot && userInfo().username !== "postgres")) return undefined;
  const pgRun = (cmd: string, args: string[]) => (asRoot ? run("runuser", ["-u", "postgres", "--", join(bin, cmd), ...args]) : run(join(bin, cmd), args));

  const dir = mkdtempSync("/tmp/pgpriv-");
  if (asRoot) {
    const { stdout } = await run("id", ["-u", "postgres"]);
    const { stdout: gid } = await run("id", ["-g", "postgres"]);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const data = join(dir, "data");
  const port = await freePort();
  await pgRun("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`;
  let running = false;

  const pg: PrivatePostgres = {
    port,
    url: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async start() {
      if (running) return;
      await pgRun("pg_ctl", ["-D", data, "-l", join(dir, "log"), "-o", options, "-w", "-t", "60", "start"]);
      running = true;
    },
    async stop() {
      if (!running) return;
      await pgRun("pg_ctl", ["-D", data, "-m", "fast", "-w", "-t", "60", "stop"]);
      running = false;
    },
    async restart() {
      await pg.stop();
      await pg.start();
    },
    async close() {
      await pgRun("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]).catch(() => undefined);
      running = false;
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await pg.start();
  } catch (err) {
    await pg.close();
    throw err;
  }
  return pg;
}
