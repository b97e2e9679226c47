// Node's HTTP/2 session keeps its streams in a Map (`streams`) and a Set (`pendingStreams`) of
// its internal state, and V8 makes a busy session's streams outlive their calls by far:
//
// - a Map or Set whose entries keep coming and going is rehashed every few entries, and V8 keeps
//   the hash table it rehashed away, with the entries it held, linked to the table that
//   replaced it (for iterators still walking the old one);
// - a full collection promotes the live young objects to the old generation, the session's
//   current tables among them;
// - from then on, each table retired from such an old table is held by the old one through
//   every scavenge (a scavenge cannot tell a dead old object from a live one), and holds the
//   next in turn, each with the streams it held: every stream of the session, and all a stream
//   references, is promoted to the old generation until the next full collection, which
//   promotes the tables of that moment and starts it over.
//
// Under load that is most of what a call leaves behind: the old generation fills at the rate
// of the calls, full collections come every few hundred milliseconds and each one stops every
// call in flight (bench/RESULTS.md, S24: 0.36 MB promoted per scavenge with our own code
// letting go of calls, 0.03 MB with this module; full collections 24 → 9 per 200,000 GetMe).
//
// So after every full collection each open session gets fresh tables holding the same
// entries: the promoted tables stop changing, nothing is linked to them, and the new tables
// retire young. The tables are found by shape (the session's own `state` symbol, holding a
// `streams` Map and a `pendingStreams` Set, which node reads afresh at every use); on a node
// that keeps them otherwise this does nothing and says so once in the debug log.
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
