// The renewal of node's HTTP/2 stream tables after full collections (src/server/http/http2-stream-tables.ts):
// it finds the tables of this node, replaces them after a full collection with tables holding
// the same streams, and streams in flight across the renewal still complete.
import { spawn } from "node:child_process";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { expect } from "chai";
import { createLogger } from "../../src/logger.js";
import { renewStreamTablesAfterFullCollections, streamTablesOf } from "../../src/server/http/http2-stream-tables.js";

// A full collection on demand, without starting mocha with --expose-gc.
setFlagsFromString("--expose-gc");
const fullCollection = runInNewContext("gc") as () => void;

function get(client: http2.ClientHttp2Session, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = client.request({ ":path": path });
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (body += chunk));
    req.on("end", () => resolve(body));
    req.on("error", reject);
    req.end();
  });
}

/** The median of the bytes a bare HTTP/2 server promotes to V8's old generation per scavenge over `calls` calls (--trace-gc-nvp). */
async function promotedBytes(mode: "renew" | "keep", calls: number): Promise<number> {
  const server = spawn(process.execPath, ["--import", "tsx", "--trace-gc-nvp", "test/support/h2-promotion-server.ts", mode], { stdio: ["pipe", "pipe", "inherit"] });
  let out = "";
  server.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
  try {
    while (!/port (\d+)/.test(out)) {
      if (server.exitCode !== null) throw new Error(`promotion server exited: ${out}`);
      await sleep(20);
    }
    const port = /port (\d+)/.exec(out)![1];
    const clients = Array.from({ length: 8 }, () => http2.connect(`http://127.0.0.1:${port}`));
    let sent = 0;
    const loop = async (client: http2.ClientHttp2Session) => {
      while (sent < calls) {
        sent++;
        await get(client, "/");
      }
    };
    await Promise.all(Array.from({ length: 64 }, (_, i) => loop(clients[i % clients.length]!)));
    clients.forEach((client) => client.close());
    server.stdin.end();
    await new Promise((resolve) => server.once("exit", resolve));
  } finally {
    server.kill();
  }
  // node 20 prints "gc=s … promoted=N", node 22 and later a JSON object per collection; the
  // scavenges after the first forced full collection count.
  const lines = out.split("\n");
  const first = lines.findIndex((line) => /gc=mc\b|"gc":"mc"/.test(line));
  const promoted = lines
    .slice(first)
    .filter((line) => /gc=s\b|"gc":"s"/.test(line))
    .map((line) => Number(/promoted[=":]+(\d+)/.exec(line)?.[1] ?? 0))
    .sort((a, b) => a - b);
  return promoted[Math.floor(promoted.length / 2)] ?? 0;
}

describe("http2 stream tables", () => {
  // The renewal is a workaround for V8 and node internals: it stays only while it pays. On a
  // node where a busy session's finished streams no longer reach the old generation, this fails
  // and src/server/http/http2-stream-tables.ts should go (bench/RESULTS.md, S24 and Runtime).
  // The medians move with the machine's other work (one fresh-clone run measured 1.03 MB kept
  // against 477 kB renewed, others 1.1-2.2 MB against 20-470 kB): a second measurement is taken
  // when the first shows no gain, and the test fails only when neither does.
  it("still keep finished streams alive on this node unless renewed", async function () {
    this.timeout(120_000);
    const seen: string[] = [];
    for (let attempt = 0; attempt < 2; attempt++) {
      const kept = await promotedBytes("keep", 100_000);
      const renewed = await promotedBytes("renew", 100_000);
      if (kept > 2 * renewed + 100_000) return;
      seen.push(`${kept} bytes without renewal, ${renewed} with it`);
    }
    expect.fail(`a scavenge promoted (median) ${seen.join("; then ")}`);
  });

  it("are found on this node's server sessions", async () => {
    const server = http2.createServer();
    const sessions: http2.ServerHttp2Session[] = [];
    server.on("session", (s) => sessions.push(s));
    server.on("stream", (stream: http2.ServerHttp2Stream) => stream.respond({ ":status": 204 }, { endStream: true }));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    try {
      await get(client, "/");
      const tables = streamTablesOf(sessions[0]!);
      expect(tables, "node keeps a session's stream tables elsewhere: see src/server/http/http2-stream-tables.ts").to.not.equal(undefined);
      expect(streamTablesOf(Object.create(null))).to.equal(undefined);
    } finally {
      client.close();
      server.close();
    }
  });

  it("are renewed after a full collection with the same streams, which still complete", async () => {
    const server = http2.createServer();
    const sessions = new Set<http2.ServerHttp2Session>();
    const held: http2.ServerHttp2Stream[] = [];
    server.on("session", (s) => {
      sessions.add(s);
      s.on("close", () => sessions.delete(s));
    });
    server.on("stream", (stream: http2.ServerHttp2Stream, headers) => {
      if (headers[":path"] === "/hold") return void held.push(stream);
      stream.respond({ ":status": 200 });
      stream.end("now");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const renewal = renewStreamTablesAfterFullCollections(sessions, createLogger("silent"));
    const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    try {
      const answers = [get(client, "/hold"), get(client, "/hold"), get(client, "/hold")];
      while (held.length < 3) await sleep(5);
      const session = [...sessions][0]!;
      const before = streamTablesOf(session)!;
      const [streams, pending] = [before.streams, before.pendingStreams];
      expect(streams.size).to.equal(3);

      fullCollection();
      await sleep(50); // the observer hears of the collection asynchronously
      const after = streamTablesOf(session)!;
      expect(after.streams).to.not.equal(streams);
      expect(after.pendingStreams).to.not.equal(pending);
      expect([...after.streams.values()]).to.have.members(held);

      held.forEach((stream, i) => {
        stream.respond({ ":status": 200 });
        stream.end(`held ${i}`);
      });
      expect(await Promise.all(answers)).to.deep.equal(["held 0", "held 1", "held 2"]);
      expect(await get(client, "/")).to.equal("now");
      expect(after.streams.size).to.equal(0);
    } finally {
      renewal.stop();
      client.close();
      server.close();
    }
  });
});
