// What a server process costs, read from /proc (Linux): CPU seconds (utime + stime of all its
// threads, GC and libuv pool included) and resident memory. The peak (VmHWM) can be reset
// between rows by writing 5 to /proc/<pid>/clear_refs, so each row reports its own peak.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";

const CLOCK_TICKS = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

export function cpuSeconds(pid: number): number {
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
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
