// Runs the service as `npm start` does (src/main.ts in a child process) and reads its output.
import { spawn, type ChildProcess } from "node:child_process";

// node itself with tsx as a loader, not the tsx wrapper: a kill reaches the service (killing the
// wrapper with SIGKILL left the service running).

export interface MainProcess {
  child: ChildProcess;
  /** Everything written so far, stdout and stderr. */
  output: () => string;
  exited: Promise<number | null>;
}

export function startMain(env: Record<string, string>): MainProcess {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, output: () => out, exited };
}

/** Polls `check` every 50 ms; throws after `timeoutMs`. */
export async function waitFor(check: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits for the "identity service started" line and returns the URL it names. */
export async function startedUrl(proc: MainProcess, timeoutMs = 60_000): Promise<string> {
  await waitFor(() => /"identity service started"/.test(proc.output()) || proc.child.exitCode !== null, timeoutMs);
  const url = /"msg":"identity service started"[^\n]*"url":"(http:\/\/[^"]+)"|"url":"(http:\/\/[^"]+)"[^\n]*"msg":"identity service started"/.exec(proc.output());
  if (!url) throw new Error(`the service did not start:\n${proc.output()}`);
  return (url[1] ?? url[2])!;
}
