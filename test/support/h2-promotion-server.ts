// A bare node:http2 server for the test that the stream-table renewal still pays on this node
// (test/unit/http2-stream-tables.test.ts). Run with --trace-gc-nvp; argv[2] "renew" renews the
// tables after full collections. Prints its port, forces a full collection every 5,000 streams
// (as a busy service has them every few hundred milliseconds), and exits on stdin's end.
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { createLogger } from "../../src/logger.js";
import { renewStreamTablesAfterFullCollections } from "../../src/server/http/http2-stream-tables.js";

setFlagsFromString("--expose-gc");
const fullCollection = runInNewContext("gc") as () => void;
const sessions = new Set<http2.ServerHttp2Session>();
const server = http2.createServer();
let answered = 0;
server.on("session", (session) => {
  sessions.add(session);
  session.on("close", () => sessions.delete(session));
});
server.on("stream", (stream: http2.ServerHttp2Stream) => {
  stream.respond({ ":status": 200 }, { waitForTrailers: true });
  stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
  stream.end("ok");
  if (++answered % 20_000 === 0) fullCollection();
});
if (process.argv[2] === "renew") renewStreamTablesAfterFullCollections(sessions, createLogger("silent"));
server.listen(0, "127.0.0.1", () => process.stdout.write(`port ${(server.address() as AddressInfo).port}\n`));
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
