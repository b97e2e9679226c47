// Compares two V8 heap snapshots of the service (e.g. the soak's, `--snapshots-at 3m,10m`):
// objects by constructor (or kind, for strings, code and V8's internals), their count and self
// size in each, sorted by growth. With --retainers NAME, who holds the objects named NAME in
// the second snapshot: the retaining object's constructor and the edge, counted.
//
//   npx tsx bench/heap-diff.ts <first.heapsnapshot> <second.heapsnapshot> [--top 30] [--retainers NAME]
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

interface Group {
  count: number;
  bytes: number;
}

function load(file: string): Snapshot {
  return JSON.parse(readFileSync(file, "utf8")) as Snapshot;
}

/** "type name" of each node: objects by constructor, the rest by kind (string, code, …). */
function nodeKey(h: Snapshot, at: number): string {
  const { node_fields, node_types } = h.snapshot.meta;
  const type = node_types[0][h.nodes[at + node_fields.indexOf("type")]!]!;
  const name = h.strings[h.nodes[at + node_fields.indexOf("name")]!]!;
  if (type === "object" || type === "closure" || type === "native" || type === "hidden" || type === "array" || type === "object shape") return `${type} ${name.slice(0, 80)}`;
  return type;
}

function groups(h: Snapshot): Map<string, Group> {
  const width = h.snapshot.meta.node_fields.length;
  const size = h.snapshot.meta.node_fields.indexOf("self_size");
  const out = new Map<string, Group>();
  for (let at = 0; at < h.nodes.length; at += width) {
    const key = nodeKey(h, at);
    const g = out.get(key) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += h.nodes[at + size]!;
    out.set(key, g);
  }
  return out;
}

function retainers(h: Snapshot, name: string, top: number): void {
  const { node_fields, edge_fields, edge_types } = h.snapshot.meta;
  const width = node_fields.length;
  const edgeWidth = edge_fields.length;
  const edgeCount = node_fields.indexOf("edge_count");
  const [eType, eName, eTo] = ["type", "name_or_index", "to_node"].map((f) => edge_fields.indexOf(f)) as [number, number, number];
  const counts = new Map<string, number>();
  let edge = 0;
  for (let at = 0; at < h.nodes.length; at += width) {
    const from = nodeKey(h, at);
    for (let i = 0; i < h.nodes[at + edgeCount]!; i++, edge += edgeWidth) {
      const to = h.edges[edge + eTo]!;
      if (nodeKey(h, to) !== name && !nodeKey(h, to).endsWith(` ${name}`)) continue;
      const type = edge_types[0][h.edges[edge + eType]!]!;
      const edgeName = type === "element" || type === "hidden" ? "" : h.strings[h.edges[edge + eName]!]!;
      // Numbered slots (elements, hash table entries) counted together.
      const label = edgeName === "" || /^\d+$/.test(edgeName) ? `[${type}]` : `.${edgeName} (${type})`;
      const key = `${from} ${label}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  console.log(`\nretainers of ${name} in the second snapshot:`);
  for (const [key, n] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${String(n).padStart(9)}  ${key}`);
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: "string", default: "30" }, retainers: { type: "string" } } });
if (positionals.length !== 2) {
  console.error("usage: npx tsx bench/heap-diff.ts <first.heapsnapshot> <second.heapsnapshot> [--top 30] [--retainers NAME]");
  process.exit(2);
}
const top = Number(values.top);
const first = groups(load(positionals[0]!));
const secondHeap = load(positionals[1]!);
const second = groups(secondHeap);
const mb = (n: number) => (n / 2 ** 20).toFixed(2).padStart(8);
const total = (m: Map<string, Group>) => [...m.values()].reduce((t, g) => t + g.bytes, 0);
console.log(`self size in all: ${mb(total(first))} MB → ${mb(total(second))} MB`);
console.log(`${"Δ MB".padStart(8)} ${"MB".padStart(8)} ${"Δ count".padStart(9)} ${"count".padStart(9)}  type and constructor`);
const keys = new Set([...first.keys(), ...second.keys()]);
const rows = [...keys].map((k) => {
  const a = first.get(k) ?? { count: 0, bytes: 0 };
  const b = second.get(k) ?? { count: 0, bytes: 0 };
  return { k, dBytes: b.bytes - a.bytes, bytes: b.bytes, dCount: b.count - a.count, count: b.count };
});
for (const r of rows.sort((x, y) => y.dBytes - x.dBytes).slice(0, top)) console.log(`${mb(r.dBytes)} ${mb(r.bytes)} ${String(r.dCount).padStart(9)} ${String(r.count).padStart(9)}  ${r.k}`);
if (values.retainers) retainers(secondHeap, values.retainers, top);
