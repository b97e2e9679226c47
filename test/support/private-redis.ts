// A redis-server of the test's own on a free loopback port, without persistence (`--save ""
// --appendonly no`), for outages and restarts that must not touch the shared Redis:
//
//   const redis = await startPrivateRedis();   // redis.url: redis://127.0.0.1:<port>/0
//   await redis.stop();                        // down: connections refused
//   await redis.start();                       // up again on the same port, empty
//   await redis.restart();                     // stop + start: everything it held is lost
//   await redis.close();                       // stopped for good (call in after())
import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";

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
}

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Resolves once something on the port answers a Redis PING with PONG (bounded by timeoutMs). */
async function waitForPong(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      socket.setTimeout(500);
      socket.once("connect", () => socket.write("PING\r\n"));
      socket.once("data", (d) => {
        socket.destroy();
        resolve(d.toString().startsWith("+PONG"));
      });
      socket.once("timeout", () => {
        socket.destroy();
        resolve(false);
      });
      socket.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`private redis-server on port ${port} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function startPrivateRedis(options: { port?: number; args?: string[] } = {}): Promise<PrivateRedis> {
  const port = options.port ?? (await freePort());
  let child: ChildProcess | undefined;
  let exited: Promise<void> | undefined;

  async function start(): Promise<void> {
    if (child) return;
    const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "yes", "--loglevel", "warning", ...(options.args ?? [])];
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
  };
}
