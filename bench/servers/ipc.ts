// The IPC contract between the bench and the server processes it forks for the ceiling rows:
// the server says where it listens, answers how many calls it has completed successfully
// (the bench's gRPC error count compares that with what h2load saw), and stops on SIGTERM.
export type ServerMessage = { type: "listening"; port: number } | { type: "calls"; ok: number };
export type BenchMessage = { type: "calls" };

export function serveIpc(port: number, okCalls: () => number, stop: () => Promise<void>): void {
  const send = (m: ServerMessage) => process.send?.(m);
  process.on("message", (m: BenchMessage) => {
    if (m.type === "calls") send({ type: "calls", ok: okCalls() });
  });
  process.once("SIGTERM", () => void stop().finally(() => process.exit(0)));
  // The channel closes when the bench dies: do not outlive it.
  process.once("disconnect", () => void stop().finally(() => process.exit(0)));
  send({ type: "listening", port });
}
