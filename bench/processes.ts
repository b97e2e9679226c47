// Child processes of the bench: the service built as `npm start` runs it, the bench's own
// TypeScript entries with tsx's loader (each one process, so /proc figures are the program's
// own), output to a log file, stopped with SIGTERM.
import { fork, spawn, type ChildProcess } from "node:child_process";
import { openSync, closeSync } from "node:fs";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));

export interface ChildOptions {
  /** Extra node flags (e.g. --cpu-prof). */
  nodeFlags?: string[];
  env?: NodeJS.ProcessEnv;
  /** stdout and stderr go here; ignored when unset. */
  logFile?: string;
}

function output(logFile: string | undefined): { stdio: Array<"ignore" | number>; done: () => void } {
  if (!logFile) return { stdio: ["ignore", "ignore"], done: () => undefined };
  const fd = openSync(logFile, "a");
  return { stdio: [fd, fd], done: () => closeSync(fd) };
}

/** Runs a TypeScript file with an IPC channel (the bench's own servers and load workers). */
export function forkTs(entry: string, opts: ChildOptions = {}): ChildProcess {
  const out = output(opts.logFile);
  const child = fork(entry, [], { cwd: REPO_ROOT, execArgv: ["--import", "tsx", ...(opts.nodeFlags ?? [])], env: opts.env ?? process.env, stdio: ["ignore", ...out.stdio, "ipc"] });
  out.done();
  return child;
}

/** Runs a built JavaScript file without IPC (the service's entry point, as `npm start` runs it). */
export function spawnJs(entry: string, opts: ChildOptions = {}): ChildProcess {
  const out = output(opts.logFile);
  const child = spawn(process.execPath, [...(opts.nodeFlags ?? []), entry], { cwd: REPO_ROOT, env: opts.env ?? process.env, stdio: ["ignore", ...out.stdio] });
  out.done();
  return child;
}

/** Builds the service (`npm run build`: tsc into dist/), as `npm start` does before it runs. */
export async function buildService(): Promise<void> {
  const child = spawn("npm", ["run", "--silent", "build"], { cwd: REPO_ROOT, stdio: ["ignore", "inherit", "inherit"] });
  const code = await exited(child);
  if (code !== 0) throw new Error(`npm run build failed (exit code ${code})`);
}

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

/** SIGTERM, then SIGKILL after `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited(child);
  clearTimeout(timer);
}

/** A port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
