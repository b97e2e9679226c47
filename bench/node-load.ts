// Runs one job in a load worker process (bench/load/worker.ts) and hands back its figures.
// `onReady` runs between the worker's warm-up and its measured window: the bench samples the
// server there, so the server's figures cover the same window as the worker's.
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { FromWorker, ToWorker, WorkerJob, WorkerResult } from "./load/protocol.js";
import { forkTs, stopChild } from "./processes.js";

const WORKER_ENTRY = fileURLToPath(new URL("./load/worker.ts", import.meta.url));

export interface WorkerHooks {
  onReady?: () => void | Promise<void>;
  onProgress?: (ops: number, errors: number) => void;
}

export async function runWorker(job: WorkerJob, logFile: string, hooks: WorkerHooks = {}): Promise<WorkerResult> {
  const child: ChildProcess = forkTs(WORKER_ENTRY, { logFile });
  const send = (m: ToWorker) => child.send(m);
  try {
    return await new Promise<WorkerResult>((resolve, reject) => {
      child.on("message", (m: FromWorker) => {
        switch (m.type) {
          case "ready":
            Promise.resolve(hooks.onReady?.()).then(() => send({ type: "go" }), reject);
            break;
          case "progress":
            hooks.onProgress?.(m.ops, m.errors);
            break;
          case "done":
            resolve(m.result);
            break;
          case "failed":
            reject(new Error(`load worker failed: ${m.error}`));
            break;
        }
      });
      child.once("exit", (code) => reject(new Error(`load worker exited (code ${code}) before reporting; see ${logFile}`)));
      send({ type: "job", job });
    });
  } finally {
    await stopChild(child, 5_000);
  }
}
