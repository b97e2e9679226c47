// Loaded into the service by the bench's soak (node --import; bench/soak.ts): every
// MEMORY_PROBE_MS (default 1000) it writes process.memoryUsage() — rss, heapTotal, heapUsed,
// external, arrayBuffers — and the size and use of each V8 heap space as JSON to
// MEMORY_PROBE_OUT, which the bench reads at each sample.
// A file rather than an endpoint: nothing is exposed on the service's port, and the service's
// code knows nothing of it.
import { renameSync, writeFileSync } from "node:fs";
import { getHeapSpaceStatistics } from "node:v8";

const out = process.env.MEMORY_PROBE_OUT;
const every = Number(process.env.MEMORY_PROBE_MS ?? 1000);
const spaces = () => Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size }]));
if (out) {
  // Written aside and renamed over: a reader never sees a half-written file.
  const write = () => {
    writeFileSync(`${out}.tmp`, JSON.stringify({ at: Date.now(), ...process.memoryUsage(), spaces: spaces() }));
    renameSync(`${out}.tmp`, out);
  };
  write();
  setInterval(write, every).unref();
}
