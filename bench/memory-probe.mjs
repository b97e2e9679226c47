// Loaded into the service by the bench's soak (node --import; bench/soak.ts): every
// MEMORY_PROBE_MS (default 1000) it writes process.memoryUsage() — rss, heapTotal, heapUsed,
// external, arrayBuffers — as JSON to MEMORY_PROBE_OUT, which the bench reads at each sample.
// A file rather than an endpoint: nothing is exposed on the service's port, and the service's
// code knows nothing of it.
import { writeFileSync } from "node:fs";

const out = process.env.MEMORY_PROBE_OUT;
const every = Number(process.env.MEMORY_PROBE_MS ?? 1000);
if (out) {
  const write = () => writeFileSync(out, JSON.stringify({ at: Date.now(), ...process.memoryUsage() }));
  write();
  setInterval(write, every).unref();
}
