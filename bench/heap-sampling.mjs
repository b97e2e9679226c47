// V8's sampling heap profiler for a running service, started and stopped by signals: load it
// with node's --import, send SIGUSR2 to start sampling, SIGTERM to write the profile (to
// HEAP_PROFILE_OUT, default ./heap-<pid>.heapprofile) and exit. Counts every object
// allocated while sampling, the ones the garbage collector already took included; with
// HEAP_PROFILE_SURVIVORS=1 only the objects that outlived a scavenge (promoted to the old
// generation, or still alive). bench/heap-top.ts summarises the file. See bench/RESULTS.md,
// "Allocation per call".
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";

const session = new Session();
session.connect();
const post = (method, params) => new Promise((resolve, reject) => session.post(method, params, (err, result) => (err ? reject(err) : resolve(result))));
const survivorsOnly = process.env.HEAP_PROFILE_SURVIVORS === "1";
let sampling = false;

process.on("SIGUSR2", () => {
  if (sampling) return;
  sampling = true;
  post("HeapProfiler.enable")
    .then(() => post("HeapProfiler.startSampling", { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: !survivorsOnly }))
    .then(() => console.error("heap sampling started"), (err) => console.error("heap sampling failed", err));
});

// Before the service's own SIGTERM handler, which starts its shutdown.
process.prependListener("SIGTERM", () => {
  if (!sampling) return;
  sampling = false;
  const out = process.env.HEAP_PROFILE_OUT ?? `heap-${process.pid}.heapprofile`;
  post("HeapProfiler.stopSampling")
    .then(({ profile }) => {
      writeFileSync(out, JSON.stringify(profile));
      console.error(`heap profile written to ${out}`);
    })
    .finally(() => process.exit(0));
});
