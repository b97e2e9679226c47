// A load worker: one process per Node-driven row, forked by the bench so the load generator
// never shares an event loop with the bench or the server. It receives a job, warms up,
// reports ready, waits for "go" (the bench samples the server's CPU in between), runs the
// measured window and reports the figures.
import { latencyPercentiles } from "../stats.js";
import { drive } from "./drive.js";
import type { FromWorker, ToWorker, WorkerJob, WorkerResult } from "./protocol.js";
import { createRpcClient, type RpcClient } from "./rpc-client.js";
import { startScenario } from "./scenarios.js";

const send = (m: FromWorker) => process.send!(m);
const nextMessage = () => new Promise<ToWorker>((resolve) => process.once("message", resolve));

/** Counts the RPCs the scenario sends. */
function counting(client: RpcClient): { client: RpcClient; sent: () => number } {
  let sent = 0;
  return {
    client: {
      send: (r) => (sent++, client.send(r)),
      unary: (m, i, t) => (sent++, client.unary(m, i, t)),
      close: () => client.close(),
    },
    sent: () => sent,
  };
}

async function run(job: WorkerJob): Promise<WorkerResult> {
  // Scenarios that name no wire speak gRPC.
  const wire = ("wire" in job.scenario && job.scenario.wire) || "grpc";
  const { client, sent } = counting(createRpcClient(job.url, wire, job));
  try {
    const scenario = await startScenario(job.scenario, client);
    if (job.warmupSeconds > 0) await drive(scenario.operation, { inFlight: job.inFlight, seconds: job.warmupSeconds });
    send({ type: "ready" });
    await nextMessage();
    const before = sent();
    const r = await drive(scenario.operation, {
      inFlight: job.inFlight,
      seconds: job.seconds,
      maxOps: job.maxOps,
      rate: job.rate,
      onProgress: (ops, errors) => send({ type: "progress", ops, errors }),
    });
    const requests = sent() - before;
    await scenario.finish();
    return {
      ops: r.ops,
      requests,
      errors: r.errors,
      errorSamples: r.errorSamples,
      ...latencyPercentiles(r.latenciesMs),
      elapsedSeconds: r.elapsedSeconds,
      usersUsed: scenario.usersUsed(),
    };
  } finally {
    client.close();
  }
}

const first = await nextMessage();
if (first.type !== "job") throw new Error(`expected a job, got ${first.type}`);
try {
  send({ type: "done", result: await run(first.job) });
} catch (err) {
  send({ type: "failed", error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
}
process.disconnect?.();
