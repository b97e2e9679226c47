// After every full collection, gives each open HTTP/2 session fresh stream tables holding the
// same entries. Why: node keeps a session's streams in a Map and a Set, and V8 links each hash
// table a rehash retires to its successor; once a table is in the old generation, every stream
// that passes through the session (and all it references) is promoted until the next full
// collection, and a busy server then runs full collections every few hundred milliseconds,
// stopping every call (bench/RESULTS.md, S24 and Runtime: node 26). Renewed, the old tables stop
// changing and the new ones retire young. The tables are found by shape (the session's `state`
// symbol, holding a `streams` Map and a `pendingStreams` Set); on a node that keeps them
// otherwise this does nothing and says so once in the debug log.
import type http2 from "node:http2";
import { constants, PerformanceObserver, type PerformanceEntry } from "node:perf_hooks";
import { types } from "node:util";
import type { Logger } from "../../logger.js";

interface StreamTables {
  streams: Map<unknown, unknown>;
  pendingStreams: Set<unknown>;
}

/** The session's stream tables, where node keeps them (checked on 20.20 and 26.12); undefined elsewhere. */
export function streamTablesOf(session: http2.Http2Session): StreamTables | undefined {
  for (const key of Object.getOwnPropertySymbols(session)) {
    if (key.description !== "state") continue;
    const state: unknown = (session as unknown as Record<symbol, unknown>)[key];
    // Node's own Map and Set classes have no Map or Set in their prototype chain: ask V8.
    if (typeof state === "object" && state !== null && types.isMap((state as StreamTables).streams) && types.isSet((state as StreamTables).pendingStreams)) {
      return state as StreamTables;
    }
  }
  return undefined;
}

/** Gives the session fresh stream tables with the same entries, of node's own (Map and Set) classes. */
function renewStreamTables(tables: StreamTables): void {
  tables.streams = new (tables.streams.constructor as MapConstructor)(tables.streams);
  tables.pendingStreams = new (tables.pendingStreams.constructor as SetConstructor)(tables.pendingStreams);
}

/**
 * Renews the stream tables of the open sessions after every full collection, until stopped.
 * `sessions` is read at each collection.
 */
export function renewStreamTablesAfterFullCollections(sessions: Iterable<http2.Http2Session>, logger: Logger): { stop(): void } {
  let unsupported = false;
  const observer = new PerformanceObserver((list) => {
    if (!list.getEntries().some((entry) => (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)) return;
    for (const session of sessions) {
      const tables = streamTablesOf(session);
      if (tables) renewStreamTables(tables);
      else if (!unsupported) {
        unsupported = true;
        logger.debug("http2 session stream tables not found: not renewed after full collections");
      }
    }
  });
  observer.observe({ entryTypes: ["gc"] });
  return { stop: () => observer.disconnect() };
}
