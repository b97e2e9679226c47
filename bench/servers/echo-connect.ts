// Ceiling row "echo-connect": the echo method served by the service's own stack — startServer
// (src/server/server.ts) with its listener, connect-node adapter and built-in interceptors
// (call log line, metrics, error mapping) — and nothing else: no auth, no stores.
import { createLogger } from "../../src/logger.js";
import { loadConfig } from "../../src/config.js";
import { startServer } from "../../src/server/server.js";
import { echoDescriptors } from "../echo.js";
import { serveIpc } from "./ipc.js";

const { echo } = echoDescriptors();
const config = loadConfig({ NODE_ENV: "development", HOST: "127.0.0.1", PORT: "0", LOG_LEVEL: "warn", SHUTDOWN_GRACE_SECONDS: "1" });
let ok = 0;
const server = await startServer({
  config,
  logger: createLogger(config.logLevel),
  routes: (router) =>
    router.rpc(echo, (request) => {
      ok++;
      return request;
    }),
  readiness: [],
});
serveIpc(server.port, () => ok, () => server.close());
