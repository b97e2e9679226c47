// Loaded into the service by the bench's soak (node --import; bench/soak.ts): every
// MEMORY_PROBE_MS (default 1000) it writes process.memoryUsage() — rss, heapTotal, heapUsed,
// external, arrayBuffers — and the size and use of each V8 heap space as JSON to
// MEMORY_PROBE_OUT, which the bench reads at each sample.
// A file rather than an endpoint: nothing is exposed on the service's port, and the service's
// code knows nothing of it.
import { writeFileSync } from "node:fs";
import { getHeapSpaceStatistics } from "node:v8";

const out = process.env.MEMORY_PROBE_OUT;
const every = Number(process.env.MEMORY_PROBE_MS ?? 1000);
const spaces = () => Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size }]));
if (out) {
  const write = () => writeFileSync(out, JSON.stringify({ at: Date.now(), ...process.memoryUsage(), spaces: spaces() }));
  write();
  setInterval(write, every).unref();
}
