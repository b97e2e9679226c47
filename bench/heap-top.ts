// Summarises a sampling heap profile (bench/heap-sampling.mjs): bytes allocated per call by
// function, and the call paths that allocated most. Divide by the calls served while
// sampling (the difference of identity_rpc_requests_total read from /metrics before and after).
//
//   npx tsx bench/heap-top.ts <file.heapprofile> --calls 60000 [--top 30]
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { calls: { type: "string", default: "1" }, top: { type: "string", default: "30" } } });
if (positionals.length !== 1) {
  console.error("usage: npx tsx bench/heap-top.ts <file.heapprofile> --calls N [--top N]");
  process.exit(2);
}
const calls = Number(values.calls);
const top = Number(values.top);
const { head } = JSON.parse(readFileSync(positionals[0]!, "utf8")) as { head: HeapNode };

const where = ({ functionName, url, lineNumber }: HeapNode["callFrame"]): string => {
  const file = url.replace(/^.*node_modules\//, "").replace(/^.*\/((?:src|dist|bench)\/)/, "$1");
  return `${functionName || "(anonymous)"} ${file}${url ? `:${lineNumber + 1}` : ""}`.trim();
};

const byFunction = new Map<string, number>();
const byPath = new Map<string, number>();
let total = 0;
const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
(function walk(node: HeapNode, path: string[]) {
  const name = where(node.callFrame);
  total += node.selfSize;
  if (node.selfSize) {
    add(byFunction, name, node.selfSize);
    add(byPath, [name, ...path.slice(-5).reverse()].join(" < "), node.selfSize);
  }
  for (const child of node.children) walk(child, [...path, name]);
})(head, []);

const perCall = (bytes: number) => `${Math.round(bytes / calls).toLocaleString("en-US").padStart(7)} B`;
console.log(`${(total / 1e6).toFixed(1)} MB sampled, ${perCall(total).trim()} per call over ${calls.toLocaleString("en-US")} calls`);
for (const [title, m] of [["by function", byFunction], ["by call path", byPath]] as const) {
  console.log(`\n${title}`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${perCall(v)}  ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
}
