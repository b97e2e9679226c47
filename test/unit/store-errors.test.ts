// The one classification of store failures (src/store/store-errors.ts) and what callers see
// of it (toConnectError): an unreachable store is `unavailable` with RetryInfo, a bug stays
// `internal`; and the outage log's one line per outage.
import { expect } from "chai";
import { Writable } from "node:stream";
import { Code } from "@connectrpc/connect";
import { ReplyError } from "ioredis";
import { AccessDeniedError, ConnectionAcquireTimeoutError, ConnectionError, ConnectionRefusedError, DatabaseError, UniqueConstraintError } from "sequelize";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { createLogger } from "../../src/logger.js";
import { toConnectError } from "../../src/server/calls/interceptors.js";
import { createOutageLog, storeFailure, StoreUnavailableError, withStoreFallback } from "../../src/store/store-errors.js";

const pgError = (code: string, message = "pg error") => Object.assign(new Error(message), { code });
const wrapped = (parent: Error) => new DatabaseError(parent as Error & { sql: string; parameters: object });

describe("store errors", () => {
  const transient: Array<[string, unknown, "postgres" | "redis"]> = [
    ["Sequelize ConnectionRefusedError", new ConnectionRefusedError(pgError("ECONNREFUSED")), "postgres"],
    ["Sequelize ConnectionAcquireTimeoutError", new ConnectionAcquireTimeoutError(new Error("Operation timeout")), "postgres"],
    ["Sequelize ConnectionError (starting up)", new ConnectionError(pgError("57P03", "the database system is starting up")), "postgres"],
    ["57P01 admin_shutdown from a query", wrapped(pgError("57P01", "terminating connection due to administrator command")), "postgres"],
    ["57P02 crash_shutdown", pgError("57P02"), "postgres"],
    ["08006 connection_failure", pgError("08006"), "postgres"],
    ["53300 too_many_connections", pgError("53300"), "postgres"],
    ["pg: Connection terminated unexpectedly", wrapped(new Error("Connection terminated unexpectedly")), "postgres"],
    ["pg: not queryable", new Error("Client has encountered a connection error and is not queryable"), "postgres"],
    ["pg-pool: connect timeout", new Error("timeout exceeded when trying to connect"), "postgres"],
    ["socket ECONNRESET", pgError("ECONNRESET", "read ECONNRESET"), "postgres"],
    ["ioredis: Command timed out", new Error("Command timed out"), "redis"],
    ["ioredis: MaxRetriesPerRequestError", Object.assign(new Error("Reached the max retries per request limit (which is 0)."), { name: "MaxRetriesPerRequestError" }), "redis"],
    ["ioredis: offline queue off", new Error("Stream isn't writeable and enableOfflineQueue options is false"), "redis"],
    ["ioredis: Connection is closed.", new Error("Connection is closed."), "redis"],
    ["ioredis Cluster: no slot map yet", new Error("Cluster isn't ready and enableOfflineQueue options is false"), "redis"],
    ["ioredis Cluster: ClusterAllFailedError", Object.assign(new Error("Failed to refresh slots cache."), { name: "ClusterAllFailedError" }), "redis"],
    ["ioredis Cluster: no startup node", new Error("None of startup nodes is available"), "redis"],
    ["ioredis Cluster: redirected too often", new Error("Too many Cluster redirections. Last error: ReplyError: CLUSTERDOWN The cluster is down"), "redis"],
    ["ioredis Cluster: closing", Object.assign(new Error("Cluster is ended."), { name: "AbortError" }), "redis"],
    ["ioredis Sentinel: no sentinel", new Error("All sentinels are unreachable. Retrying from scratch after 10ms."), "redis"],
    ["Redis CLUSTERDOWN", new ReplyError("CLUSTERDOWN The cluster is down"), "redis"],
    ["Redis MOVED passed on from an auto-pipeline", new ReplyError("MOVED 12788 127.0.0.1:42679"), "redis"],
    ["Redis ASK passed on", new ReplyError("ASK 3999 127.0.0.1:7001"), "redis"],
    ["Redis TRYAGAIN", new ReplyError("TRYAGAIN Multiple keys request during rehashing of slot"), "redis"],
    ["Redis MASTERDOWN", new ReplyError("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), "redis"],
    ["Redis LOADING", new ReplyError("LOADING Redis is loading the dataset in memory"), "redis"],
    ["Redis READONLY", new ReplyError("READONLY You can't write against a read only replica."), "redis"],
    ["Redis OOM (noeviction, full)", new ReplyError("OOM command not allowed when used memory > 'maxmemory'."), "redis"],
  ];
  for (const [name, err, store] of transient) {
    it(`${name} → ${store} unavailable`, () => {
      expect(storeFailure(err)?.store).to.equal(store);
      const mapped = toConnectError(err);
      expect(mapped.code).to.equal(Code.Unavailable);
      expect(mapped.findDetails(RetryInfoSchema)[0]?.retryDelay?.seconds).to.equal(1n);
      expect(mapped.metadata.get("retry-after")).to.equal("1");
      expect(mapped.cause).to.be.instanceOf(StoreUnavailableError);
    });
  }

  const bugs: Array<[string, unknown]> = [
    ["TypeError", new TypeError("x is undefined")],
    ["SQL syntax error 42601", wrapped(pgError("42601", "syntax error"))],
    ["undefined column 42703", pgError("42703")],
    ["unique violation", new UniqueConstraintError({ message: "dup" })],
    ["wrong credentials (AccessDeniedError)", new AccessDeniedError(pgError("28P01"))],
    ["Redis WRONGTYPE", new ReplyError("WRONGTYPE Operation against a key holding the wrong kind of value")],
    ["Redis script error", new ReplyError("ERR Error running script")],
    ["Redis CROSSSLOT (keys of one command in different slots: a bug)", new ReplyError("CROSSSLOT Keys in request don't hash to the same slot")],
    ["a string", "boom"],
    ["an outbound HTTP call (fetch failed, cause ECONNREFUSED)", new TypeError("fetch failed", { cause: pgError("ECONNREFUSED") })],
  ];
  for (const [name, err] of bugs) {
    it(`${name} stays internal`, () => {
      expect(storeFailure(err)).to.equal(undefined);
      expect(toConnectError(err).code).to.equal(Code.Internal);
    });
  }

  it("withStoreFallback swallows an unreachable store only", async () => {
    expect(await withStoreFallback(() => Promise.reject(new Error("Command timed out")), "fallback")).to.equal("fallback");
    const bug = await withStoreFallback(() => Promise.reject(new TypeError("bug")), "fallback").catch((e: Error) => e);
    expect(bug).to.be.instanceOf(TypeError);
  });

  it("logs one warn line per outage and one info line when it ends", () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split("\n")) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    const log = createOutageLog(createLogger("info", {}, sink));
    for (let i = 0; i < 50; i++) log.report(storeFailure(new Error("Command timed out"))!);
    log.report(storeFailure(pgError("57P01"))!);
    log.recovered("redis");
    log.recovered("redis");
    log.report(storeFailure(new Error("Command timed out"))!);
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        expect(lines.map((l) => [l.msg, l.store])).to.deep.equal([
          ["store unavailable", "redis"],
          ["store unavailable", "postgres"],
          ["store available again", "redis"],
          ["store unavailable", "redis"],
        ]);
        expect(lines[2]!.failures).to.equal(50);
        resolve();
      }),
    );
  });
});
