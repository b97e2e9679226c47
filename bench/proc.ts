// What a server process costs, read from /proc (Linux): CPU seconds (utime + stime of all its
// threads, GC and libuv pool included) and resident memory. The peak (VmHWM) can be reset
// between rows by writing 5 to /proc/<pid>/clear_refs, so each row reports its own peak.
// Also the CPU of the stores (every PostgreSQL and Redis process of the machine): on one
// machine they share the cores with the service, and their share is part of a request's cost.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";

const CLOCK_TICKS = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

const STORE_COMMANDS = new Set(["postgres", "redis-server"]);

/** Command name and CPU seconds of a process (undefined once it is gone). */
function stat(pid: number | string): { command: string; cpu: number } | undefined {
  let line: string;
  try {
    line = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const fields = line.slice(line.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
  return { command: line.slice(line.indexOf("(") + 1, line.lastIndexOf(")")), cpu: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS };
}

export function cpuSeconds(pid: number): number {
  const s = stat(pid);
  if (!s) throw new Error(`process ${pid} is gone`);
  return s.cpu;
}

/** CPU seconds so far of every PostgreSQL and Redis process, by pid. */
export function storesCpu(): Map<string, number> {
  const byPid = new Map<string, number>();
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    const s = stat(pid);
    if (s && STORE_COMMANDS.has(s.command)) byPid.set(pid, s.cpu);
  }
  return byPid;
}

/**
 * The stores' CPU seconds between two samples. Backends come and go with pooled connections:
 * one that started in between counts whole, one that ended in between is missed (its share
 * of the window is unknown), so keep the windows short.
 */
export function storesCpuSpent(before: Map<string, number>, after: Map<string, number>): number {
  let total = 0;
  for (const [pid, cpu] of after) total += cpu - (before.get(pid) ?? 0);
  return total;
}

function statusKb(pid: number, field: "VmHWM" | "VmRSS"): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]);
}

export const peakRssMb = (pid: number) => statusKb(pid, "VmHWM") / 1024;
export const rssMb = (pid: number) => statusKb(pid, "VmRSS") / 1024;

/** Resets the peak to the current RSS; false where the kernel does not allow it (then peaks run from the start). */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}
