// Protocol conformance of the real server with peers other than its own stack (issue 15, points
// 7-12): Python's C-core gRPC, raw node:http2 and HTTP/1.1 requests, @grpc/grpc-js and the
// redocly OpenAPI linter. Unknown methods, unsupported encodings, 405s, undecodable messages,
// header size limits and the served OpenAPI document.
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { compressionGzip, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { OtpPurpose, UserAuthService } from "../../gen/identity/v1/auth_pb.js";
import { grpcJsClient, testPhone } from "../support/clients.js";
import { startTestServer, type TestServer } from "../support/server.js";

const run = promisify(execFile);
const python = "/usr/bin/python3";
const redocly = join(process.cwd(), "node_modules/.bin/redocly");

/** A RequestOtpRequest whose identifier holds invalid UTF-8 (ff fe), purpose 1: the bytes. */
const badUtf8 = Buffer.from("0a062b3135fffe351001", "hex");
/** A RequestOtpRequest that is not protobuf at all (a field with wire type 7). */
const notProtobuf = Buffer.from("0f0f0f", "hex");

function grpcFrame(message: Buffer): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  return frame;
}

interface H2Answer {
  headers: http2.IncomingHttpHeaders;
  /** The response ended with its first HEADERS frame (a trailers-only gRPC answer). */
  endedWithHeaders: boolean;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
  rstCode: number;
}

/** One request on a fresh raw HTTP/2 connection (prior knowledge), with the server's SETTINGS. */
async function h2Request(url: string, headers: http2.OutgoingHttpHeaders, body?: Buffer): Promise<H2Answer & { maxHeaderListSize?: number }> {
  const session = http2.connect(url);
  session.on("error", () => {});
  try {
    const settings = await new Promise<http2.Settings>((resolve) => session.once("remoteSettings", resolve));
    const answer = await new Promise<H2Answer>((resolve) => {
      const req = session.request({ ":method": "POST", ...headers });
      const out: H2Answer = { headers: {}, endedWithHeaders: false, trailers: {}, body: Buffer.alloc(0), rstCode: 0 };
      req.on("response", (h, flags) => {
        out.headers = h;
        out.endedWithHeaders = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      });
      req.on("trailers", (t) => (out.trailers = t));
      req.on("data", (d: Buffer) => (out.body = Buffer.concat([out.body, d])));
      req.on("error", () => {});
      req.on("close", () => resolve({ ...out, rstCode: req.rstCode ?? 0 }));
      req.end(body);
    });
    return { ...answer, maxHeaderListSize: settings.maxHeaderListSize };
  } finally {
    session.close();
  }
}

interface CoreResult {
  code: string;
  details: string;
}

/** Unary calls through C-core (test/support/cgrpc-calls.py). */
async function cgrpc(port: number, calls: Array<{ path: string; body?: Buffer; metadata?: Record<string, string> }>): Promise<CoreResult[]> {
  const arg = JSON.stringify(calls.map((c) => ({ path: c.path, body: (c.body ?? Buffer.alloc(0)).toString("hex"), metadata: c.metadata ?? {} })));
  const { stdout } = await run(python, [join(process.cwd(), "test/support/cgrpc-calls.py"), `127.0.0.1:${port}`, arg], { timeout: 60_000 });
  return JSON.parse(stdout) as CoreResult[];
}

function grpcJsCall(client: grpc.Client, path: string, message: Buffer, metadata = new grpc.Metadata()): Promise<{ code: grpc.status; details: string }> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, message, metadata, (err) => resolve({ code: err?.code ?? grpc.status.OK, details: err?.details ?? "" }));
  });
}

describe("protocol conformance (issue 15, points 7-12)", function () {
  this.timeout(60_000);
  let server: TestServer;
  let grpcJs: grpc.Client;

  before(async () => {
    server = await startTestServer();
    grpcJs = grpcJsClient(server.port);
  });
  after(async () => {
    grpcJs?.close();
    await server?.close();
  });

  /** Log lines at error level or above (pino: 50) written since `from`. */
  const errorsSince = (from: number) => server.logs.slice(from).filter((l) => Number(l.level) >= 50);

  describe("7: unknown methods and services", () => {
    it("answers gRPC with HTTP 200 and grpc-status 12 in a trailers-only response", async () => {
      const method = await h2Request(server.url, { ":path": "/identity.v1.UserAuthService/NoSuchMethod", "content-type": "application/grpc", te: "trailers" }, grpcFrame(Buffer.alloc(0)));
      expect(method.headers[":status"]).to.equal(200);
      expect(method.endedWithHeaders, "one HEADERS frame with END_STREAM").to.equal(true);
      expect(method.headers["content-type"]).to.equal("application/grpc");
      expect(method.headers["grpc-status"]).to.equal("12");
      expect(decodeURIComponent(String(method.headers["grpc-message"]))).to.equal("unknown method NoSuchMethod for service identity.v1.UserAuthService");
      expect(method.body.length).to.equal(0);

      const service = await h2Request(server.url, { ":path": "/no.such.Service/Call", "content-type": "application/grpc+proto" }, grpcFrame(Buffer.alloc(0)));
      expect(service.headers).to.include({ ":status": 200, "grpc-status": "12", "grpc-message": encodeURIComponent("unknown service no.such.Service") });
    });

    it("answers gRPC-Web (HTTP/1.1) with HTTP 200 and grpc-status 12 in the headers", async () => {
      const res = await fetch(`${server.url}/identity.v1.UserAuthService/NoSuchMethod`, { method: "POST", headers: { "content-type": "application/grpc-web+proto" }, body: new Uint8Array(grpcFrame(Buffer.alloc(0))) });
      expect(res.status).to.equal(200);
      expect(res.headers.get("content-type")).to.equal("application/grpc-web+proto");
      expect(res.headers.get("grpc-status")).to.equal("12");
      expect((await res.arrayBuffer()).byteLength).to.equal(0);
      // connect-node's gRPC-Web client, under a path prefix the server does not serve.
      const client = createClient(UserAuthService, createGrpcWebTransport({ baseUrl: `${server.url}/prefix`, httpVersion: "1.1" }));
      const err = await client.getMe({}).then(() => undefined, (e: unknown) => ConnectError.from(e));
      expect(err?.code).to.equal(Code.Unimplemented);
    });

    it("reads as UNIMPLEMENTED in C-core and in @grpc/grpc-js", async () => {
      const [method, service] = await cgrpc(server.port, [{ path: "/identity.v1.UserAuthService/NoSuchMethod" }, { path: "/no.such.Service/Call" }]);
      expect(method).to.deep.equal({ code: "UNIMPLEMENTED", details: "unknown method NoSuchMethod for service identity.v1.UserAuthService" });
      expect(service).to.deep.equal({ code: "UNIMPLEMENTED", details: "unknown service no.such.Service" });
      expect((await grpcJsCall(grpcJs, "/identity.v1.UserAuthService/NoSuchMethod", Buffer.alloc(0))).code).to.equal(grpc.status.UNIMPLEMENTED);
    });

    it("still answers other unknown paths with a JSON 404", async () => {
      const res = await fetch(`${server.url}/identity.v1.UserAuthService/NoSuchMethod`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
      expect(res.status).to.equal(404);
      expect(((await res.json()) as { code: string }).code).to.equal("not_found");
    });
  });

  describe("8: unsupported grpc-encoding", () => {
    const headers = { ":path": "/identity.v1.UserAuthService/GetMe", "content-type": "application/grpc", "grpc-encoding": "snappy" };

    it("answers unimplemented with grpc-accept-encoding over gRPC and gRPC-Web", async () => {
      const compressed = grpcFrame(Buffer.alloc(0));
      compressed[0] = 1;
      const h2 = await h2Request(server.url, headers, compressed);
      expect(h2.headers).to.include({ ":status": 200, "grpc-status": "12", "grpc-accept-encoding": "gzip,br" });
      expect(h2.endedWithHeaders).to.equal(true);

      const web = await fetch(`${server.url}/identity.v1.UserAuthService/GetMe`, { method: "POST", headers: { "content-type": "application/grpc-web+proto", "grpc-encoding": "snappy" }, body: new Uint8Array(compressed) });
      expect(web.status).to.equal(200);
      expect(web.headers.get("grpc-status")).to.equal("12");
      expect(web.headers.get("grpc-accept-encoding")).to.equal("gzip,br");
    });

    it("answers a Connect request's unsupported Content-Encoding with Accept-Encoding", async () => {
      const res = await fetch(`${server.url}/identity.v1.UserAuthService/RequestOtp`, { method: "POST", headers: { "content-type": "application/json", "content-encoding": "snappy" }, body: "{}" });
      expect(res.status).to.equal(501);
      expect(res.headers.get("accept-encoding")).to.equal("gzip,br");
      expect(((await res.json()) as { code: string }).code).to.equal("unimplemented");
    });

    it("still serves the encodings it lists (gzip)", async () => {
      const client = createClient(UserAuthService, createGrpcTransport({ baseUrl: server.url, sendCompression: compressionGzip, compressMinBytes: 0 }));
      const res = await client.requestOtp({ identifier: testPhone(), purpose: OtpPurpose.REGISTER });
      expect(res.expiresIn).to.be.greaterThan(0);
    });
  });

  describe("9: 405 names the allowed methods", () => {
    it("on a Connect RPC path", async () => {
      const res = await fetch(`${server.url}/identity.v1.UserAuthService/Login`, { method: "GET" });
      expect(res.status).to.equal(405);
      expect(res.headers.get("allow")).to.equal("POST");
      expect(((await res.json()) as { code: string }).code).to.equal("unimplemented");
    });

    it("on a REST path", async () => {
      const res = await fetch(`${server.url}/api/auth/otp/request`, { method: "GET" });
      expect(res.status).to.equal(405);
      expect(res.headers.get("allow")).to.equal("POST, OPTIONS");
    });
  });

  describe("10: undecodable request messages", () => {
    const path = "/identity.v1.UserAuthService/RequestOtp";

    it("answers invalid_argument over gRPC (fast path, connect-node's path, C-core), without an error log", async () => {
      const from = server.logs.length;
      // The fast path (grpc-js), connect-node's gRPC handler (an Origin header sends calls there).
      expect(await grpcJsCall(grpcJs, path, badUtf8)).to.include({ code: grpc.status.INVALID_ARGUMENT });
      expect(await grpcJsCall(grpcJs, path, notProtobuf)).to.include({ code: grpc.status.INVALID_ARGUMENT });
      const viaConnect = await h2Request(server.url, { ":path": path, "content-type": "application/grpc", origin: "https://app.example.com", te: "trailers" }, grpcFrame(badUtf8));
      expect({ ...viaConnect.headers, ...viaConnect.trailers }).to.include({ "grpc-status": "3" });
      const core = await cgrpc(server.port, [{ path, body: badUtf8 }, { path, body: notProtobuf }]);
      expect(core.map((r) => r.code)).to.deep.equal(["INVALID_ARGUMENT", "INVALID_ARGUMENT"]);
      expect(errorsSince(from)).to.deep.equal([]);
      const logged = server.logs.slice(from).filter((l) => l.procedure === path);
      expect(logged.map((l) => l.code)).to.deep.equal(Array(5).fill("invalid_argument"));
    });

    it("answers invalid_argument over gRPC-Web and Connect (binary and JSON), without an error log", async () => {
      const from = server.logs.length;
      const web = await fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": "application/grpc-web+proto" }, body: new Uint8Array(grpcFrame(badUtf8)) });
      const body = Buffer.from(await web.arrayBuffer());
      expect(web.status).to.equal(200);
      expect(body.toString("latin1")).to.match(/grpc-status: ?3\r\n/);

      const binary = await fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": "application/proto" }, body: new Uint8Array(badUtf8) });
      expect(binary.status).to.equal(400);
      expect(((await binary.json()) as { code: string }).code).to.equal("invalid_argument");

      // JSON that is not UTF-8 (ff fe inside a string).
      const json = Buffer.concat([Buffer.from('{"identifier":"+15'), Buffer.from([0xff, 0xfe]), Buffer.from('5","purpose":"OTP_PURPOSE_REGISTER"}')]);
      const connectJson = await fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: new Uint8Array(json) });
      expect(connectJson.status).to.equal(400);
      expect(((await connectJson.json()) as { code: string }).code).to.equal("invalid_argument");
      expect(errorsSince(from)).to.deep.equal([]);
    });

    it("answers invalid_argument (400) on REST for a body that is not UTF-8", async () => {
      const json = Buffer.concat([Buffer.from('{"identifier":"+15'), Buffer.from([0xff, 0xfe]), Buffer.from('5","purpose":"OTP_PURPOSE_REGISTER"}')]);
      const res = await fetch(`${server.url}/api/auth/otp/request`, { method: "POST", headers: { "content-type": "application/json" }, body: new Uint8Array(json) });
      expect(res.status).to.equal(400);
      expect(await res.json()).to.deep.equal({ code: "invalid_argument", message: "request body is not valid UTF-8", details: [] });
    });
  });

  describe("11: HTTP/2 header limits", () => {
    const big = "a".repeat(20_000);

    it("advertises SETTINGS_MAX_HEADER_LIST_SIZE and answers a larger field section with 431, not a reset", async () => {
      const small = await h2Request(server.url, { ":method": "GET", ":path": "/healthz", "x-pad": "a".repeat(8000) });
      expect(small.maxHeaderListSize).to.equal(65536);
      expect(small.headers[":status"]).to.equal(200);

      const res = await h2Request(server.url, { ":method": "GET", ":path": "/healthz", "x-pad": big });
      expect(res.rstCode).to.equal(http2.constants.NGHTTP2_NO_ERROR);
      expect(res.headers[":status"]).to.equal(431);
      expect(JSON.parse(res.body.toString())).to.deep.equal({ code: "resource_exhausted", message: "request headers larger than 16384 bytes", details: [] });
    });

    it("answers gRPC with resource_exhausted (raw, @grpc/grpc-js and C-core)", async () => {
      const raw = await h2Request(server.url, { ":path": "/identity.v1.UserAuthService/GetMe", "content-type": "application/grpc", "x-pad": big }, grpcFrame(Buffer.alloc(0)));
      expect(raw.headers).to.include({ ":status": 200, "grpc-status": "8" });
      const metadata = new grpc.Metadata();
      metadata.set("x-pad", big);
      expect((await grpcJsCall(grpcJs, "/identity.v1.UserAuthService/GetMe", Buffer.alloc(0), metadata)).code).to.equal(grpc.status.RESOURCE_EXHAUSTED);
      const [core] = await cgrpc(server.port, [{ path: "/identity.v1.UserAuthService/GetMe", metadata: { "x-pad": big } }]);
      expect(core!.code).to.equal("RESOURCE_EXHAUSTED");
    });

    it("limits by size, not by node's count of fields (128 by default, then a reset)", async () => {
      const headers: http2.OutgoingHttpHeaders = { ":method": "GET", ":path": "/healthz" };
      for (let i = 0; i < 200; i++) headers[`x-h${i}`] = "v";
      const res = await h2Request(server.url, headers);
      expect(res.headers[":status"]).to.equal(200);
    });

    it("answers HTTP/1.1 over the same size with 431", async () => {
      const res = await fetch(`${server.url}/healthz`, { headers: { "x-pad": big } });
      expect(res.status).to.equal(431);
    });
  });

  describe("12: OpenAPI document", () => {
    it("passes redocly lint with its default rules", async () => {
      const dir = await mkdtemp(join(tmpdir(), "identity-openapi-"));
      try {
        const file = join(dir, "openapi.json");
        await writeFile(file, await (await fetch(`${server.url}/openapi.json`)).text());
        const env = { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" };
        const result = await run(redocly, ["lint", "--format=summary", file], { env, cwd: dir, timeout: 60_000 }).catch((err: { stdout: string; stderr: string }) => err);
        expect("code" in result ? `${result.stdout}\n${result.stderr}` : "", "redocly lint failed").to.equal("");
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
});
