// h2load (Debian package nghttp2-client) for the rows whose request never changes: it replays
// one request (a POST with its body, or a bodiless GET) with fixed headers at a fixed number of
// streams in flight, with far less client CPU than any Node client. It judges success by the
// HTTP status only (right for Connect and REST, whose errors are statuses), so the caller adds
// gRPC errors (HTTP 200 + grpc-status) from the server's own counts.
import { execFile } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import { latencyPercentiles, type Latencies } from "./stats.js";
import { isH1, type RawRequest } from "./load/rpc-client.js";

const run = promisify(execFile);

export interface H2loadOptions {
  url: string;
  request: RawRequest;
  inFlight: number;
  /** HTTP/2 connections (the streams in flight are spread over them); HTTP/1.1 uses one connection per call in flight. */
  connections: number;
  seconds: number;
  /** Scratch prefix for the body and per-request log files (removed afterwards). */
  scratch: string;
}

export interface H2loadResult extends Latencies {
  done: number;
  succeeded: number;
  /** Requests that failed at the HTTP level (status, stream reset). */
  failed: number;
  seconds: number;
}

export async function h2loadVersion(): Promise<string | undefined> {
  try {
    return (await run("h2load", ["--version"])).stdout.trim();
  } catch {
    return undefined;
  }
}

function field(output: string, pattern: RegExp): number {
  const match = pattern.exec(output);
  if (!match) throw new Error(`unexpected h2load output (no ${pattern}):\n${output}`);
  return Number(match[1]);
}

function duration(output: string): number {
  const match = /finished in ([\d.]+)(ms|s)\b/.exec(output);
  if (!match) throw new Error(`unexpected h2load output (no duration):\n${output}`);
  return Number(match[1]) / (match[2] === "ms" ? 1000 : 1);
}

export async function runH2load(o: H2loadOptions): Promise<H2loadResult> {
  const bodyFile = `${o.scratch}.body`;
  const logFile = `${o.scratch}.log`;
  // h2load sends a GET, or with -d a POST of the file: nothing else.
  const { verb } = o.request;
  if (verb !== "GET" && verb !== "POST") throw new Error(`h2load cannot send ${verb} requests`);
  if (verb === "GET" && o.request.body.length) throw new Error("h2load cannot send a GET with a body");
  if (verb === "POST") await writeFile(bodyFile, o.request.body);
  const h1 = isH1(o.request.wire);
  if (!h1 && o.inFlight % o.connections !== 0) throw new Error(`in flight (${o.inFlight}) must be a multiple of connections (${o.connections})`);
  const headers = Object.entries(o.request.headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);
  const args = [
    ...(h1 ? ["--h1", "-c", String(o.inFlight), "-m", "1"] : ["-c", String(o.connections), "-m", String(o.inFlight / o.connections)]),
    "-t", "1",
    "-D", `${Math.round(o.seconds * 1000)}ms`,
    ...(verb === "POST" ? ["-d", bodyFile] : []),
    `--log-file=${logFile}`,
    ...headers,
    `${o.url}${o.request.path}`,
  ];
  try {
    const { stdout } = await run("h2load", args, { maxBuffer: 16 << 20, timeout: (o.seconds + 30) * 1000 }).catch((err: { stderr?: string; message: string }) => {
      throw new Error(`h2load failed: ${err.stderr?.trim().split("\n").pop() || err.message}`);
    });
    // Per request: start (µs since the epoch), HTTP status, microseconds to the response's end.
    const latencies = (await readFile(logFile, "utf8"))
      .split("\n")
      .filter(Boolean)
      .map((line) => Number(line.split("\t")[2]) / 1000);
    const done = field(stdout, /(\d+) done/);
    const succeeded = field(stdout, /(\d+) succeeded/);
    return {
      done,
      succeeded,
      failed: Math.max(field(stdout, /(\d+) failed/), done - succeeded),
      seconds: duration(stdout),
      ...latencyPercentiles(latencies),
    };
  } finally {
    await Promise.all([rm(bodyFile, { force: true }), rm(logFile, { force: true })]);
  }
}
