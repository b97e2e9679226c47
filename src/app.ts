// Composition root: config → stores → the API server and/or the job worker (ROLE, DESIGN §9).
// main.ts runs it as a process; tests start it in-process on a free port.
import { startApi, storeReadiness } from "./api.js";
import type { Config } from "./config.js";
import { startWorker, type Worker } from "./jobs/worker.js";
import type { Logger } from "./logger.js";
import { createNotifier } from "./notify/index.js";
import { startServer, type RunningServer } from "./server/server.js";
import { openStores, type Stores } from "./store/index.js";

export interface App {
  config: Config;
  /** The listener: the API (ROLE api or all), or only health and metrics (ROLE worker). */
  server?: RunningServer;
  /** The job worker (ROLE worker or all). */
  worker?: Worker;
  stores: Stores;
  /** Graceful stop: the server drains, the worker hands its jobs back, then the stores close. Same promise on every call. */
  close(): Promise<void>;
}

export async function startApp(config: Config, logger: Logger): Promise<App> {
  const stores = await openStores(config, logger);
  const notifier = createNotifier(config, logger);
  const app: App = { config, stores, close: () => (closing ??= stop()) };
  let closing: Promise<void> | undefined;
  async function stop(): Promise<void> {
    // The worker's handlers use the stores: it stops before they close.
    await Promise.allSettled([app.server?.close(), app.worker?.stop()]);
    await Promise.allSettled([notifier.close(), stores.close()]);
  }
  try {
    // Under ROLE=all and worker, /readyz also waits for the worker: started (it starts after
    // the listener), and its job store connection up (the LISTEN channel reconnects by itself
    // after PostgreSQL comes back).
    const jobsReady = {
      name: "jobs",
      check: async () => {
        if (!app.worker) throw new Error("the job worker has not started yet");
        if (!app.worker.ready()) throw new Error("the job store's notification channel is reconnecting");
      },
    };
    if (config.role !== "worker") app.server = await startApi(config, logger, stores, notifier, config.role === "all" ? [jobsReady] : []);
    // A worker-only instance listens on PORT too, for probes and scrapes only: /healthz,
    // /readyz, /metrics and grpc.health.v1 (no API services).
    else app.server = await startServer({ config, logger, routes: () => {}, readiness: [...storeReadiness(stores), jobsReady], outages: stores.outages });
    if (config.role !== "api") app.worker = await startWorker({ config, logger, stores, notifier });
  } catch (err) {
    await app.close();
    throw err;
  }
  return app;
}
