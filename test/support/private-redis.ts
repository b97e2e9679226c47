// A redis-server of the test's own on a free loopback port, without persistence (`--save ""
// --appendonly no`), for outages and restarts that must not touch the shared Redis:
//
//   const redis = await startPrivateRedis();   // redis.url: redis://127.0.0.1:<port>/0
//   await redis.stop();                        // down: connections refused
//   await redis.start();                       // up again on the same port, empty
//   await redis.restart();                     // stop + start: everything it held is lost
//   await redis.close();                       // stopped for good (call in after())
//   redis.pause(); redis.resume();             // SIGSTOP/SIGCONT: connections stay open, nothing answers
//
// `args` add options (cluster mode, replicaof…); `configFile` goes first on the command line
// (a Sentinel needs one it can rewrite); `password` makes it require AUTH (and use the same
// password towards its primary), and this module's helpers then authenticate by themselves.
import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import { Redis } from "ioredis";

export interface PrivateRedis {
  readonly port: number;
  readonly url: string;
  /** Starts the server (again) on its port; resolves once it answers PING. */
  start(): Promise<void>;
  /** Stops the server (SIGKILL: no shutdown save, as a crash); resolves once it exited. */
  stop(): Promise<void>;
  /** stop() then start(): the data is gone. */
  restart(): Promise<void>;
  /** Stops it for good. */
  close(): Promise<void>;
  /** Freezes the process (SIGSTOP): its sockets stay open but nothing answers, as a hung server. */
  pause(): void;
  /** Lets a paused process run again (SIGCONT). */
  resume(): void;
}

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The passwords of the servers started here with one, by port. */
const passwords = new Map<number, string>();

/** Runs one command on the loopback server at `port` over a short-lived connection (1 s bounds). */
export async function redisCommand(port: number, command: string, ...args: string[]): Promise<unknown> {
  const redis = new Redis(port, "127.0.0.1", { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000, commandTimeout: 1000, password: passwords.get(port) });
  try {
    await redis.connect();
    return await redis.call(command, ...args);
  } finally {
    redis.disconnect();
  }
}

/** Every key on the loopback server at `port` (SCAN without a pattern). */
export async function redisKeys(port: number): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, page] = (await redisCommand(port, "SCAN", cursor, "COUNT", "1000")) as [string, string[]];
    cursor = next;
    keys.push(...page);
  } while (cursor !== "0");
  return keys;
}

/** Resolves once something on the port answers a Redis PING with PONG (bounded by timeoutMs). */
async function waitForPong(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      socket.setTimeout(500);
      const password = passwords.get(port);
      const auth = password === undefined ? "" : `*2\r\n$4\r\nAUTH\r\n$${Buffer.byteLength(password)}\r\n${password}\r\n`;
      socket.once("connect", () => socket.write(`${auth}*1\r\n$4\r\nPING\r\n`));
      let reply = "";
      socket.on("data", (d) => {
        reply += d.toString();
        if (password !== undefined && !reply.includes("\r\n", reply.indexOf("\r\n") + 2)) return; // AUTH's answer, then PING's
        socket.destroy();
        resolve(reply.endsWith("+PONG\r\n"));
      });
      socket.once("timeout", () => {
        socket.destroy();
        resolve(false);
      });
      socket.once("error", () => resolve(false));
      socket.once("close", () => resolve(false)); // closed before answering (a protocol error): not up yet
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`private redis-server on port ${port} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function startPrivateRedis(options: { port?: number; args?: string[]; configFile?: string; password?: string } = {}): Promise<PrivateRedis> {
  const port = options.port ?? (await freePort());
  const auth = options.password === undefined ? [] : ["--requirepass", options.password, "--masterauth", options.password];
  // A port is reused by later servers: each says for itself whether it has a password.
  if (options.password === undefined) passwords.delete(port);
  else passwords.set(port, options.password);
  let child: ChildProcess | undefined;
  let exited: Promise<void> | undefined;

  async function start(): Promise<void> {
    if (child) return;
    const args = [...(options.configFile ? [options.configFile] : []), "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "yes", "--loglevel", "warning", ...auth, ...(options.args ?? [])];
    const proc = spawn("redis-server", args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    proc.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    child = proc;
    exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    const failed = new Promise<never>((_, reject) => {
      proc.once("error", reject);
      proc.once("exit", (code) => reject(new Error(`redis-server exited (${code}) on port ${port}: ${stderr.trim()}`)));
    });
    failed.catch(() => undefined);
    try {
      await Promise.race([waitForPong(port, 10_000), failed]);
    } catch (err) {
      await stop();
      throw err;
    }
  }

  async function stop(): Promise<void> {
    const proc = child;
    if (!proc) return;
    child = undefined;
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    await exited;
  }

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    start,
    stop,
    async restart() {
      await stop();
      await start();
    },
    close: stop,
    pause: () => void child?.kill("SIGSTOP"),
    resume: () => void child?.kill("SIGCONT"),
  };
}
