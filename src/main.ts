// The process: validate the configuration, start the app, stop gracefully on SIGTERM/SIGINT.
import { setFlagsFromString } from "node:v8";
import { startApp } from "./app.js";
import { ConfigError, loadConfig } from "./config.js";
import { createLogger } from "./logger.js";

// Under load V8 lets garbage pile up to several times the live heap before a full collection
// (bench/RESULTS.md, Memory: 330 MB resident for a 46 MB live heap). Collecting when the old
// generation has grown by a fifth keeps the footprint near the live heap, and keeps each full
// collection short: every request's header values are strings in the old generation, freed
// in the pause of the next full collection, so the pause grows with the calls since the last
// one (bench/RESULTS.md, S24). A --heap-growing-percent given to node wins.
if (!process.execArgv.some((a) => a.startsWith("--heap-growing-percent"))) setFlagsFromString("--heap-growing-percent=20");

let config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`configuration error: ${err.message}`);
    process.exit(2);
  }
  throw err;
}

const logger = createLogger(config.logLevel, { env: config.nodeEnv });
const app = await startApp(config, logger).catch((err: unknown) => {
  logger.fatal({ err }, "start failed");
  process.exit(1);
});

/** After the grace, how long the orderly stop may take before the process exits regardless. */
const FORCED_EXIT_AFTER_GRACE_MS = 1_500;

let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, graceSeconds: config.shutdownGraceSeconds }, "shutting down");
    // The grace is a promise: at its end the calls in flight are abandoned (their database work
    // cancelled, each answered unavailable), and the process is gone within grace + 2 s even if
    // something (a store that does not answer, a job) keeps the orderly stop from finishing.
    setTimeout(() => {
      logger.error({ graceSeconds: config.shutdownGraceSeconds }, "shutdown overran its grace: exiting now");
      process.exit(1);
    }, config.shutdownGraceSeconds * 1000 + FORCED_EXIT_AFTER_GRACE_MS).unref();
    app.close().then(
      () => {
        logger.info("stopped");
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  });
}
logger.info({ url: app.server?.url, role: config.role, jobStore: app.worker ? (config.mongodbUri ? "mongodb" : "postgres") : undefined }, "identity service started");
