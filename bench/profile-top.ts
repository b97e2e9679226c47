// Summarises a V8 CPU profile (node --cpu-prof; `npm run bench -- --profile` writes one for
// the service): where the time went, by function (self and inclusive) and by package.
//
//   npx tsx bench/profile-top.ts bench/out/<run>/profiles/<server>/<file>.cpuprofile [--top 25]
//   … --callers writeBuffer     the call paths that lead to functions of that name
//   … --last 25                 only the last 25 s of the profile (the service's profile also
//                               holds the sign-ins that set the session rows up; the last row
//                               and the rest after it are at the end)
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: "string", default: "25" }, callers: { type: "string" }, last: { type: "string" } } });
if (positionals.length !== 1) {
  console.error("usage: npx tsx bench/profile-top.ts <file.cpuprofile> [--top N] [--callers FUNCTION] [--last SECONDS]");
  process.exit(2);
}
const top = Number(values.top);
const profile = JSON.parse(readFileSync(positionals[0]!, "utf8")) as CpuProfile;

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

/** Where code lives: a package under node_modules, a file of ours, or the runtime. */
function packageOf(url: string): string {
  if (!url) return "(native / runtime)";
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1]!;
  if (url.startsWith("node:")) return url;
  const ours = /\/((?:src|gen|bench)\/.*)$/.exec(url);
  return ours ? ours[1]! : url;
}

function functionOf(n: ProfileNode): string {
  const { functionName, url, lineNumber } = n.callFrame;
  const where = url ? `${packageOf(url)}:${lineNumber + 1}` : "";
  return `${functionName || "(anonymous)"} ${where}`.trim();
}

/** Ten frames above a sample of `name`, innermost first. */
function callPath(id: number): string {
  const frames: string[] = [];
  for (let cur = parent.get(id); cur !== undefined && frames.length < 10; cur = parent.get(cur)) frames.push(functionOf(byId.get(cur)!));
  return frames.join(" < ");
}

const self = new Map<string, number>();
const callers = new Map<string, number>();
const inclusive = new Map<string, number>();
const packages = new Map<string, number>();
let total = 0;
let idle = 0;
const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);

// Sample i happened at the sum of the deltas up to it; with --last, earlier samples are skipped.
const span = profile.timeDeltas.reduce((a, b) => a + b, 0);
const from = values.last === undefined ? -Infinity : span - Number(values.last) * 1e6;
let at = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  at += dt;
  if (at < from) return;
  const node = byId.get(id)!;
  total += dt;
  if (node.callFrame.functionName === "(idle)") {
    idle += dt;
    return;
  }
  add(self, functionOf(node), dt);
  if (node.callFrame.functionName === values.callers) add(callers, callPath(id), dt);
  add(packages, node.callFrame.functionName === "(garbage collector)" ? "(garbage collector)" : packageOf(node.callFrame.url), dt);
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const key = functionOf(byId.get(cur)!);
    if (!seen.has(key)) add(inclusive, key, dt);
    seen.add(key);
  }
});

const busy = total - idle;
const pct = (v: number) => `${((100 * v) / busy).toFixed(1).padStart(5)}%`;
function print(title: string, m: Map<string, number>): void {
  console.log(`\n${title}`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(v)}  ${k}`);
}

console.log(`${(total / 1e6).toFixed(1)} s profiled, ${(busy / 1e6).toFixed(1)} s busy (percentages are of busy time)`);
print("self time by package", packages);
print("self time by function", self);
print("inclusive time by function", inclusive);
if (values.callers) print(`call paths into ${values.callers}`, callers);
