// The benchmark harness (bench/, `npm run bench`) in its smoke mode, once, as a child process,
// so that it cannot rot: it must complete and report every row with numbers. No timing is
// asserted — the figures depend on the machine. Slow (about a minute): it builds and starts the service,
// both echo servers and a load worker per row, on a database and Redis prefix of this run. Then a
// soak of a few seconds (`--soak`), which must sample the service's memory every second.
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect } from "chai";
import { ROW_IDS } from "../../bench/rows.js";
import type { Report, RowResult, SoakReport } from "../../bench/report.js";
import { startScriptNodeFlags } from "../../bench/targets.js";
import { uniqueDatabaseUrl, uniqueRedisPrefix } from "../support/env.js";

const run = promisify(execFile);
const NUMBERS: Array<keyof RowResult> = ["rate", "ops", "requests", "errors", "seconds", "p50Ms", "p99Ms", "p999Ms", "serverCpuSeconds", "serverCpuMsPerOp", "storesCpuMsPerOp", "peakRssMb", "ratioToGrpcJs"];

describe("bench --smoke", function () {
  this.timeout(180_000);
  this.slow(90_000);

  it("runs every row and writes a JSON report with numbers for each", async () => {
    const out = await mkdtemp(join(tmpdir(), "bench-smoke-"));
    try {
      const args = ["--import", "tsx", "bench/main.ts", "--smoke", "--database-url", uniqueDatabaseUrl("bench"), "--redis-prefix", uniqueRedisPrefix("bench"), "--out", out];
      const { stdout } = await run(process.execPath, args, { timeout: 170_000, maxBuffer: 16 << 20 });
      expect(stdout).to.match(/× grpc-js/); // the final table

      const files = (await readdir(out)).filter((f) => f.endsWith(".json"));
      expect(files).to.have.length(1);
      const report = JSON.parse(await readFile(join(out, files[0]!), "utf8")) as Report;
      expect(report.rows.map((r) => r.id)).to.deep.equal([...ROW_IDS]);
      // The service ran with the node flags of npm start.
      expect(report.options.serviceNodeFlags).to.deep.equal(startScriptNodeFlags());
      expect(startScriptNodeFlags()).to.include("--max-semi-space-size=8");
      for (const row of report.rows) {
        expect(row, row.id).not.to.have.property("failed");
        for (const field of NUMBERS) expect((row as RowResult)[field], `${row.id}.${field}`).to.be.a("number").and.satisfy(Number.isFinite);
        expect((row as RowResult).ops, `${row.id}.ops`).to.be.greaterThan(0);
      }
      // The service's memory with the sessions live: after signing them in, and at rest.
      const memory = report.serviceMemory!;
      expect(memory.sessions).to.equal(200);
      for (const sample of [memory.afterSignIn, memory.atRest!]) {
        expect(sample.rssMb).to.be.a("number").and.greaterThan(0);
        expect(sample.heapUsedMb).to.be.a("number").and.greaterThan(0);
      }
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it("soaks: a paced mix, the service's RSS and V8 heap sampled each interval, a verdict on the end RSS", async () => {
    const out = await mkdtemp(join(tmpdir(), "bench-soak-"));
    try {
      const args = ["--import", "tsx", "bench/main.ts", "--smoke", "--soak", "4s", "--database-url", uniqueDatabaseUrl("bench"), "--redis-prefix", uniqueRedisPrefix("bench"), "--out", out];
      const { stdout } = await run(process.execPath, args, { timeout: 170_000, maxBuffer: 16 << 20 });
      expect(stdout).to.match(/\| time \| RSS MB \| heap used MB \| heap total MB \| external MB \| array buffers MB \| calls \| errors \|/);
      expect(stdout).to.match(/RSS at 0:02 [\d.]+ MB, at the end \(0:04\) [\d.]+ MB: [+-][\d.]+ % — (NOT )?within ±5 %/);

      const files = (await readdir(out)).filter((f) => f.endsWith(".json"));
      expect(files).to.have.length(1);
      const { soak, options } = JSON.parse(await readFile(join(out, files[0]!), "utf8")) as SoakReport;
      expect(options.serviceNodeFlags).to.deep.equal(startScriptNodeFlags());
      expect(soak.capacity).to.be.a("number").and.greaterThan(0);
      expect(soak.rate).to.be.closeTo(soak.capacity! / 2, 1e-9);
      // A sample at the start, one a second, one at the end.
      expect(soak.samples.map((x) => x.seconds)).to.deep.equal([0, 1, 2, 3, 4]);
      for (const x of soak.samples) {
        for (const field of ["rssMb", "heapUsedMb", "heapTotalMb", "externalMb", "arrayBuffersMb"] as const) expect(x[field], `${x.seconds} s ${field}`).to.be.a("number").and.greaterThan(0);
      }
      expect(soak.baseline.seconds).to.equal(2);
      expect(soak.end.seconds).to.equal(4);
      // Paced: about rate × seconds operations, not as many as the service can take.
      const calls = soak.samples.reduce((n, x) => n + x.calls, 0);
      expect(calls).to.equal(soak.ops).and.be.greaterThan(0).and.at.most(Math.ceil(soak.rate * 4) + 1);
      expect(soak.errors, soak.errorSamples.join("; ")).to.equal(0);
      expect(soak.withinTolerance).to.equal(Math.abs(soak.rssChangePercent) <= 5);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
