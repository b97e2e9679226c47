// The one-port server (DESIGN §3) with real clients over the network: Connect (HTTP/1.1,
// HTTP/2, TLS), gRPC (@grpc/grpc-js), gRPC-Web and reflection (buf curl), health,
// metrics, error mapping, request meta, CORS, limits and graceful close.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type ConnectRouter, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { Redis } from "ioredis";
import pg from "pg";
import { BadRequestSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { ServerReflection, ServerReflectionRequestSchema, type ServerReflectionResponse } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { HealthCheckRequestSchema, HealthCheckResponse_ServingStatus, HealthCheckResponseSchema } from "../../gen/grpc/health/v1/health_pb.js";
import { GetMeRequestSchema, GetMeResponseSchema, LoginRequestSchema, LoginResponseSchema, RefreshTokenRequestSchema, RefreshTokenResponseSchema, UserAuthService } from "../../gen/identity/v1/auth_pb.js";
import { ProfileService } from "../../gen/identity/v1/profile_pb.js";
import { loadConfig } from "../../src/config.js";
import { exhausted, invalid } from "../../src/domain/errors.js";
import { createLogger } from "../../src/logger.js";
import { requestMetaKey } from "../../src/server/calls/context.js";
import { readBody } from "../../src/server/http/body.js";
import { sendJson } from "../../src/server/http/plain.js";
import { startServer, type RunningServer, type ServerDeps } from "../../src/server/server.js";
import { apiServices } from "../../src/server/services.js";
import { grpcUnary } from "../support/clients.js";
import { PG_ADMIN_URL, REDIS_URL, testEnv } from "../support/env.js";


const run = promisify(execFile);
const buf = join(process.cwd(), "node_modules/.bin/buf");
const maxRequestBytes = 4096;
const origin = "https://app.example.com";

/** Calls of the test Login whose signal aborted: request id → the reason's code. */
const abortedCalls = new Map<string, Code>();
/** Request ids of the test RefreshToken calls whose handler has returned. */
const returnedCalls = new Set<string>();

/** A small UserAuthService: GetMe echoes the request meta, other methods fail or wait on demand. */
function testRoutes(router: ConnectRouter): void {
  for (const service of apiServices) if (service !== UserAuthService) router.service(service, {});
  router.service(UserAuthService, {
    getMe(_req, ctx) {
      const meta = ctx.values.get(requestMetaKey);
      ctx.responseHeader.set("x-echo", ctx.requestHeader.get("x-echo") ?? "none");
      return { user: { id: meta.requestId, username: meta.ip, email: meta.userAgent, phoneNumber: ctx.requestHeader.get("x-echo") ?? "" } };
    },
    requestOtp() {
      throw invalid([{ field: "identifier", description: "must be an e-mail address or a phone number" }]);
    },
    verifyOtp() {
      throw new Error("database exploded: secret detail");
    },
    register() {
      throw exhausted("Too many requests", 30);
    },
    /** Answers after `identifier` milliseconds, or with the abort reason if the call is aborted first. */
    async login(req, ctx: HandlerContext) {
      await sleep(Number(req.identifier), undefined, { signal: ctx.signal }).catch(() => {
        abortedCalls.set(ctx.values.get(requestMetaKey).requestId, ConnectError.from(ctx.signal.reason).code);
        throw ctx.signal.reason;
      });
      return { userId: "slow" };
    },
    /** Answers after `refresh_token` milliseconds, whatever happens to the call meanwhile (a handler that ignores its signal). */
    async refreshToken(req, ctx: HandlerContext) {
      await sleep(Number(req.refreshToken));
      returnedCalls.add(ctx.values.get(requestMetaKey).requestId);
      return { accessToken: "too late", refreshToken: "too late" };
    },
  });
}

function captureLogger(lines: Record<string, unknown>[]) {
  return createLogger("info", {}, { write: (s: string) => void lines.push(JSON.parse(s)) });
}

async function counterValue(url: string, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(",");
  for (const line of text.split("\n")) {
    const m = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
    if (m && m[1] === name && m[2]!.split(",").sort().join(",") === want) return Number(m[3]);
  }
  return 0;
}

function connectJson(url: string, procedure: string, body: string, headers: Record<string, string> = {}) {
  return fetch(`${url}/${procedure}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
}

function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", (err: NodeJS.ErrnoException) => resolve(err.code === "ECONNREFUSED"));
  });
}

describe("server (one port, every protocol)", function () {
  this.timeout(20000);
  const logs: Record<string, unknown>[] = [];
  const pool = new pg.Pool({ connectionString: PG_ADMIN_URL, max: 2 });
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  let failing = false;
  let server: RunningServer;
  let tmp: string;

  const deps = (env: Record<string, string>, extra: Partial<ServerDeps> = {}): ServerDeps => ({
    config: loadConfig(testEnv({ MAX_REQUEST_BYTES: String(maxRequestBytes), ...env })),
    logger: captureLogger(logs),
    routes: testRoutes,
    readiness: [
      { name: "postgres", check: async () => void (await pool.query("SELECT 1")) },
      { name: "redis", check: async () => void (await redis.ping()) },
      {
        name: "switch",
        check: async () => {
          if (failing) throw new Error("switched off");
        },
      },
    ],
    ...extra,
  });

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), "identity-server-test-"));
    server = await startServer(
      deps(
        { TRUSTED_PROXIES: "127.0.0.1,10.0.0.0/8,2001:db8::/32", CORS_ORIGINS: origin },
        {
          plainRoutes: ({ router, contextValuesFor }) => [
            async (req, res, url) => {
              if (url.pathname !== "/test/echo" || req.method !== "POST") return false;
              const body = await readBody(req, { limit: maxRequestBytes, declared: req.headers["content-length"] });
              sendJson(res, 200, { bytes: body.length, rpcs: router.handlers.length, requestId: contextValuesFor(req).get(requestMetaKey).requestId });
              return true;
            },
            (_req, _res, url) => {
              if (url.pathname === "/test/boom") throw new Error("plain route secret");
              return false;
            },
          ],
        },
      ),
    );
  });

  after(async () => {
    await server?.close();
    await pool.end();
    redis.disconnect();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  describe("Connect", () => {
    it("answers a JSON call over HTTP/1.1 with the request meta in the context", async () => {
      const res = await connectJson(server.url, "identity.v1.UserAuthService/GetMe", "{}", { "user-agent": "test-agent/1.0" });
      expect(res.status).to.equal(200);
      const body = (await res.json()) as { user: { id: string; username: string; email: string } };
      expect(body.user.username).to.equal("127.0.0.1");
      expect(body.user.email).to.equal("test-agent/1.0");
      expect(body.user.id).to.equal(res.headers.get("x-request-id"));
    });

    it("answers over HTTP/2 (prior knowledge) with the Connect client", async () => {
      const client = createClient(UserAuthService, createConnectTransport({ baseUrl: server.url, httpVersion: "2" }));
      const res = await client.getMe({});
      expect(res.user?.username).to.equal("127.0.0.1");
    });

    it("answers unimplemented for methods without an implementation", async () => {
      const res = await connectJson(server.url, "identity.v1.UserAuthService/Logout", "{}");
      expect(res.status).to.equal(501);
      expect(((await res.json()) as { code: string }).code).to.equal("unimplemented");
      const client = createClient(ProfileService, createConnectTransport({ baseUrl: server.url, httpVersion: "2" }));
      const err = await client.getProfile({}).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect(err?.code).to.equal(Code.Unimplemented);
    });

    it("maps a DomainError to its code with BadRequest details, and RetryInfo for resource_exhausted", async () => {
      const client = createClient(UserAuthService, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" }));
      const bad = await client.requestOtp({ identifier: "x" }).catch((e: unknown) => ConnectError.from(e));
      expect(bad).to.be.instanceOf(ConnectError);
      expect((bad as ConnectError).code).to.equal(Code.InvalidArgument);
      const [details] = (bad as ConnectError).findDetails(BadRequestSchema);
      expect(details?.fieldViolations.map((v) => [v.field, v.description])).to.deep.equal([["identifier", "must be an e-mail address or a phone number"]]);

      const limited = await client.register({}).catch((e: unknown) => ConnectError.from(e));
      expect((limited as ConnectError).code).to.equal(Code.ResourceExhausted);
      expect((limited as ConnectError).findDetails(RetryInfoSchema)[0]?.retryDelay?.seconds).to.equal(30n);
      expect((limited as ConnectError).metadata.get("retry-after")).to.equal("30");
    });

    it("answers internal 'Internal error' for an unexpected error and logs the real one with the request id", async () => {
      const res = await connectJson(server.url, "identity.v1.UserAuthService/VerifyOtp", "{}", { "x-request-id": "req-internal-0001" });
      expect(res.status).to.equal(500);
      const text = await res.text();
      expect(JSON.parse(text)).to.deep.equal({ code: "internal", message: "Internal error" });
      expect(text).not.to.contain("secret");
      const line = logs.find((l) => l.requestId === "req-internal-0001");
      expect(line).to.include({ code: "internal", procedure: "/identity.v1.UserAuthService/VerifyOtp", level: 50 });
      expect((line?.err as { message: string }).message).to.equal("database exploded: secret detail");
    });

    it("answers malformed JSON with invalid_argument (400) and still logs and counts the call", async () => {
      const labels = { service: "identity.v1.UserAuthService", method: "GetMe", code: "invalid_argument" };
      const before = await counterValue(server.url, "identity_rpc_requests_total", labels);
      const res = await connectJson(server.url, "identity.v1.UserAuthService/GetMe", "{not json", { "x-request-id": "req-malformed-01" });
      expect(res.status).to.equal(400);
      expect(((await res.json()) as { code: string }).code).to.equal("invalid_argument");
      expect(await counterValue(server.url, "identity_rpc_requests_total", labels)).to.equal(before + 1);
      expect(logs.find((l) => l.requestId === "req-malformed-01")).to.include({ code: "invalid_argument" });
    });

    it("refuses a request larger than maxRequestBytes with resource_exhausted", async () => {
      const big = JSON.stringify({ identifier: "x".repeat(maxRequestBytes) });
      const res = await connectJson(server.url, "identity.v1.UserAuthService/Login", big);
      expect(res.status).to.equal(429);
      expect(((await res.json()) as { code: string }).code).to.equal("resource_exhausted");
    });

    it("answers unknown paths with a JSON 404", async () => {
      const res = await fetch(`${server.url}/nothing/here`);
      expect(res.status).to.equal(404);
      expect(await res.json()).to.deep.equal({ code: "not_found", message: "No route for GET /nothing/here" });
    });
  });

  describe("deadlines on the Connect path", () => {
    it("answers deadline_exceeded at Connect-Timeout-Ms though the handler ignores its signal, and never sends its result", async () => {
      for (const httpVersion of ["1.1", "2"] as const) {
        const requestId = `req-connect-deadline-${httpVersion}-${Math.random().toString(36).slice(2, 10)}`;
        const client = createClient(UserAuthService, createConnectTransport({ baseUrl: server.url, httpVersion }));
        const err = await client.refreshToken({ refreshToken: "1500" }, { timeoutMs: 200, headers: { "x-request-id": requestId } }).then(
          () => undefined,
          (e: unknown) => ConnectError.from(e),
        );
        expect([err?.code, err?.rawMessage]).to.deep.equal([Code.DeadlineExceeded, "the operation timed out"]);
        expect(returnedCalls.has(requestId)).to.equal(false);
        // The client's own timer may have fired first: the server's answer, read raw.
        const res = await connectJson(server.url, "identity.v1.UserAuthService/RefreshToken", JSON.stringify({ refreshToken: "1500" }), { "connect-timeout-ms": "200" });
        expect([res.status, await res.json()]).to.deep.equal([504, { code: "deadline_exceeded", message: "the operation timed out" }]);
      }
    });
  });

  describe("request meta", () => {
    it("echoes a well-formed x-request-id and replaces a malformed one", async () => {
      const kept = await connectJson(server.url, "identity.v1.UserAuthService/GetMe", "{}", { "x-request-id": "abc-123_456.789" });
      expect(kept.headers.get("x-request-id")).to.equal("abc-123_456.789");
      const replaced = await connectJson(server.url, "identity.v1.UserAuthService/GetMe", "{}", { "x-request-id": "no good\tid" });
      expect(replaced.headers.get("x-request-id")).to.match(/^[0-9a-f-]{36}$/);
      const plain = await fetch(`${server.url}/healthz`, { headers: { "x-request-id": "abc-123_456.789" } });
      expect(plain.headers.get("x-request-id")).to.equal("abc-123_456.789");
    });

    it("honours X-Forwarded-For from a trusted peer: the right-most untrusted hop", async () => {
      const ipFor = async (xff: string) => {
        const res = await connectJson(server.url, "identity.v1.UserAuthService/GetMe", "{}", { "x-forwarded-for": xff });
        return ((await res.json()) as { user: { username: string } }).user.username;
      };
      expect(await ipFor("203.0.113.7")).to.equal("203.0.113.7");
      expect(await ipFor("198.51.100.1, 203.0.113.7, 10.1.2.3")).to.equal("203.0.113.7");
      expect(await ipFor("2606:4700::1111, 2001:db8::5")).to.equal("2606:4700::1111");
    });

    it("logs one line per call with request id, procedure, code, duration and ip, without bodies or credentials", async () => {
      await connectJson(server.url, "identity.v1.UserAuthService/Login", JSON.stringify({ identifier: "0", verificationToken: "body-marker-123" }), {
        authorization: "Bearer header-secret-456",
        "x-request-id": "req-logging-0001",
      });
      const lines = logs.filter((l) => l.requestId === "req-logging-0001");
      expect(lines).to.have.length(1);
      expect(lines[0]).to.include({ procedure: "/identity.v1.UserAuthService/Login", code: "ok", ip: "127.0.0.1", protocol: "connect" });
      expect(lines[0]!.durationMs).to.be.a("number");
      const all = JSON.stringify(logs);
      expect(all).not.to.contain("body-marker-123");
      expect(all).not.to.contain("header-secret-456");
    });
  });

  describe("gRPC (@grpc/grpc-js)", () => {
    let client: grpc.Client;
    before(() => {
      client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    });
    after(() => client.close());

    it("calls a method", async () => {
      const res = await grpcUnary(client, "/identity.v1.UserAuthService/GetMe", GetMeRequestSchema, GetMeResponseSchema, create(GetMeRequestSchema));
      expect(res.user?.username).to.equal("127.0.0.1");
    });

    it("reports errors with gRPC status codes, oversized messages included", async () => {
      const err = await grpcUnary(client, "/identity.v1.UserAuthService/Logout", GetMeRequestSchema, GetMeResponseSchema, create(GetMeRequestSchema)).catch((e: grpc.ServiceError) => e);
      expect((err as grpc.ServiceError).code).to.equal(grpc.status.UNIMPLEMENTED);
      const big = create(LoginRequestSchema, { identifier: "x".repeat(maxRequestBytes) });
      const tooBig = await grpcUnary(client, "/identity.v1.UserAuthService/Login", LoginRequestSchema, GetMeResponseSchema, big).catch((e: grpc.ServiceError) => e);
      expect((tooBig as grpc.ServiceError).code).to.equal(grpc.status.RESOURCE_EXHAUSTED);
    });

    it("serves grpc.health.v1.Health/Check following readiness", async () => {
      const check = (service: string) =>
        grpcUnary(client, "/grpc.health.v1.Health/Check", HealthCheckRequestSchema, HealthCheckResponseSchema, create(HealthCheckRequestSchema, { service }));
      expect((await check("")).status).to.equal(HealthCheckResponse_ServingStatus.SERVING);
      expect((await check("identity.v1.KycService")).status).to.equal(HealthCheckResponse_ServingStatus.SERVING);
      const unknown = await check("no.such.Service").catch((e: grpc.ServiceError) => e);
      expect((unknown as grpc.ServiceError).code).to.equal(grpc.status.NOT_FOUND);
      failing = true;
      try {
        expect((await check("")).status).to.equal(HealthCheckResponse_ServingStatus.NOT_SERVING);
      } finally {
        failing = false;
      }
    });

    /** A raw grpc-js call: its status (trailers included), response headers and the request id it was sent with. */
    function rawCall(path: string, body: Uint8Array, opts: { deadlineMs?: number; cancelAfterMs?: number; headers?: Record<string, string> } = {}) {
      const metadata = new grpc.Metadata();
      const requestId = `req-fast-${Math.random().toString(36).slice(2, 12)}`;
      metadata.set("x-request-id", requestId);
      for (const [k, v] of Object.entries(opts.headers ?? {})) metadata.set(k, v);
      const options = opts.deadlineMs === undefined ? {} : { deadline: Date.now() + opts.deadlineMs };
      return new Promise<{ status: grpc.StatusObject; headers?: grpc.Metadata; response?: Buffer; requestId: string }>((resolve) => {
        let headers: grpc.Metadata | undefined;
        let response: Buffer | undefined;
        const call = client.makeUnaryRequest(path, (b: Uint8Array) => Buffer.from(b), (b: Buffer) => b, body, metadata, options, (_err, res) => (response = res));
        call.on("metadata", (m) => (headers = m));
        call.on("status", (status) => setImmediate(() => resolve({ status, headers, response, requestId })));
        if (opts.cancelAfterMs !== undefined) setTimeout(() => call.cancel(), opts.cancelAfterMs);
      });
    }

    /**
     * A gRPC call on a raw HTTP/2 stream, for deadlines: grpc-js gives up at its own deadline (a
     * reset), racing the server's answer. Its grpc-status, the bytes of its response and its reset code.
     */
    async function h2Call(path: string, message: Uint8Array, headers: Record<string, string>): Promise<{ status?: number; bytes: number; rstCode?: number; requestId: string }> {
      const requestId = `req-h2-${Math.random().toString(36).slice(2, 12)}`;
      const session = http2.connect(server.url);
      try {
        const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", "x-request-id": requestId, ...headers });
        let bytes = 0;
        let status: number | undefined;
        stream.on("data", (d: Buffer) => (bytes += d.length));
        stream.on("response", (h) => (status = h["grpc-status"] === undefined ? undefined : Number(h["grpc-status"])));
        stream.on("trailers", (t) => (status = Number(t["grpc-status"])));
        stream.end(Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), message]));
        await new Promise((resolve) => stream.on("close", resolve));
        return { status, bytes, rstCode: stream.rstCode, requestId };
      } finally {
        session.close();
      }
    }

    async function logLine(requestId: string): Promise<Record<string, unknown>> {
      for (let i = 0; i < 100; i++) {
        const line = logs.find((l) => l.requestId === requestId && l.msg === "rpc");
        if (line) return line;
        await sleep(20);
      }
      throw new Error(`no log line for ${requestId}`);
    }

    const loginBody = (ms: number) => toBinary(LoginRequestSchema, create(LoginRequestSchema, { identifier: String(ms) }));

    it("gives handlers the request headers and returns their response headers, logged and counted as gRPC", async () => {
      const call = await rawCall("/identity.v1.UserAuthService/GetMe", new Uint8Array(), { headers: { "x-echo": "from-client" } });
      expect(call.status.code).to.equal(grpc.status.OK);
      expect(fromBinary(GetMeResponseSchema, call.response!).user?.phoneNumber).to.equal("from-client");
      expect(call.headers?.get("x-echo")).to.deep.equal(["from-client"]);
      expect(call.headers?.get("x-request-id")).to.deep.equal([call.requestId]);
      expect(await logLine(call.requestId)).to.include({ procedure: "/identity.v1.UserAuthService/GetMe", protocol: "grpc", code: "ok" });
    });

    it("puts an error's metadata and details in the trailers", async () => {
      const call = await rawCall("/identity.v1.UserAuthService/Register", new Uint8Array());
      expect(call.status.code).to.equal(grpc.status.RESOURCE_EXHAUSTED);
      expect(call.status.details).to.equal("Too many requests");
      expect(call.status.metadata.get("retry-after")).to.deep.equal(["30"]);
      expect(call.status.metadata.get("grpc-status-details-bin")).to.have.length(1);
      expect(await logLine(call.requestId)).to.include({ code: "resource_exhausted" });
    });

    it("keeps serving when clients reset calls with an error code, before, during and after their body", async () => {
      const session = http2.connect(server.url);
      const grpcHeaders = { ":method": "POST", ":path": "/identity.v1.UserAuthService/Login", "content-type": "application/grpc", te: "trailers" };
      const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, loginBody(5000).length]), Buffer.from(loginBody(5000))]);
      const reset = (code: number, send: "nothing" | "half" | "all", afterMs: number) =>
        new Promise<void>((resolve) => {
          const req = session.request(send === "all" ? grpcHeaders : { ...grpcHeaders, "grpc-timeout": send === "nothing" ? "bogus" : "10S" });
          req.on("error", () => {});
          req.on("close", () => resolve());
          if (send === "half") req.write(frame.subarray(0, 3));
          if (send === "all") req.end(frame);
          setTimeout(() => req.close(code), afterMs);
        });
      const { NGHTTP2_INTERNAL_ERROR, NGHTTP2_PROTOCOL_ERROR, NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = http2.constants;
      await Promise.all([
        reset(NGHTTP2_INTERNAL_ERROR, "nothing", 0),
        reset(NGHTTP2_PROTOCOL_ERROR, "half", 20),
        reset(NGHTTP2_INTERNAL_ERROR, "all", 100),
        reset(NGHTTP2_REFUSED_STREAM, "all", 100),
        reset(NGHTTP2_CANCEL, "half", 50),
      ]);
      session.close();
      const res = await grpcUnary(client, "/identity.v1.UserAuthService/GetMe", GetMeRequestSchema, GetMeResponseSchema, create(GetMeRequestSchema));
      expect(res.user?.username).to.equal("127.0.0.1");
    });

    const aborts = [
      { why: "at the deadline (grpc-timeout)", opts: { grpcTimeout: "300m" }, status: grpc.status.DEADLINE_EXCEEDED, code: Code.DeadlineExceeded, logged: "deadline_exceeded" },
      { why: "when the client cancels", opts: { cancelAfterMs: 200 }, status: grpc.status.CANCELLED, code: Code.Canceled, logged: "canceled" },
    ];
    it("answers deadline_exceeded, without the payload, to a call whose grpc-timeout expired while its handler ran (1n)", async () => {
      for (let i = 0; i < 5; i++) {
        const call = await h2Call("/identity.v1.UserAuthService/GetMe", new Uint8Array(), { "grpc-timeout": "1n" });
        expect([call.status, call.bytes, call.rstCode]).to.deep.equal([grpc.status.DEADLINE_EXCEEDED, 0, http2.constants.NGHTTP2_NO_ERROR]);
        expect(await logLine(call.requestId)).to.include({ code: "deadline_exceeded" });
      }
    });

    it("answers deadline_exceeded at the deadline, in trailers, though the handler ignores its signal, and drops its result", async () => {
      const message = toBinary(RefreshTokenRequestSchema, create(RefreshTokenRequestSchema, { refreshToken: "1500" }));
      const call = await h2Call("/identity.v1.UserAuthService/RefreshToken", message, { "grpc-timeout": "300m" });
      // Answered before the handler returned.
      expect(returnedCalls.has(call.requestId)).to.equal(false);
      expect([call.status, call.bytes, call.rstCode]).to.deep.equal([grpc.status.DEADLINE_EXCEEDED, 0, http2.constants.NGHTTP2_NO_ERROR]);
      expect(await logLine(call.requestId)).to.include({ code: "deadline_exceeded" });
    });

    for (const { why, opts, status, code, logged } of aborts) {
      it(`aborts the handler's signal ${why} and records ${logged}`, async () => {
        const call = opts.grpcTimeout !== undefined ? await h2Call("/identity.v1.UserAuthService/Login", loginBody(5000), { "grpc-timeout": opts.grpcTimeout }) : await rawCall("/identity.v1.UserAuthService/Login", loginBody(5000), opts);
        expect(typeof call.status === "object" ? call.status.code : call.status).to.equal(status);
        const line = await logLine(call.requestId);
        expect(line).to.include({ code: logged });
        expect(line.durationMs).to.be.below(2000);
        expect(abortedCalls.get(call.requestId)).to.equal(code);
      });
    }
  });

  describe("reflection and gRPC-Web (buf curl)", () => {
    it("lists the identity services, health and reflection", async () => {
      const { stdout } = await run(buf, ["curl", "--http2-prior-knowledge", "--reflect", "--list-services", server.url]);
      const services = stdout.trim().split("\n");
      expect(services).to.include.members([
        ...apiServices.map((s) => s.typeName),
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
      ]);
      expect(services).to.have.length(apiServices.length + 3);
    });

    it("calls a method described by reflection over gRPC and over gRPC-Web", async () => {
      // gRPC needs HTTP/2; gRPC-Web goes over HTTP/1.1 here.
      for (const args of [["--http2-prior-knowledge", "--protocol", "grpc"], ["--protocol", "grpcweb"]]) {
        const { stdout } = await run(buf, ["curl", ...args, "--data", "{}", `${server.url}/identity.v1.UserAuthService/GetMe`]);
        expect(JSON.parse(stdout).user.username).to.equal("127.0.0.1");
      }
    });

    it("finds files by symbol (service, method, message, enum value), name and extension, with dependencies", async () => {
      const client = createClient(ServerReflection, createConnectTransport({ baseUrl: server.url, httpVersion: "2" }));
      const requests: MessageInitShape<typeof ServerReflectionRequestSchema>["messageRequest"][] = [
        { case: "fileContainingSymbol", value: "identity.v1.UserAuthService.GetMe" },
        { case: "fileContainingSymbol", value: "identity.v1.User" },
        { case: "fileContainingSymbol", value: "identity.v1.OTP_PURPOSE_LOGIN" },
        { case: "fileByFilename", value: "identity/v1/points.proto" },
        { case: "fileContainingExtension", value: { containingType: "google.protobuf.MethodOptions", extensionNumber: 50001 } },
        { case: "allExtensionNumbersOfType", value: "google.protobuf.MethodOptions" },
        { case: "fileContainingSymbol", value: "identity.v1.NoSuchThing" },
      ];
      async function* send() {
        for (const messageRequest of requests) yield create(ServerReflectionRequestSchema, { messageRequest });
      }
      const answers: ServerReflectionResponse["messageResponse"][] = [];
      for await (const res of client.serverReflectionInfo(send())) answers.push(res.messageResponse);
      const files = (i: number) => {
        const a = answers[i]!;
        if (a.case !== "fileDescriptorResponse") throw new Error(`answer ${i} is ${a.case}`);
        return a.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name);
      };
      // The first answer carries the file and every import, transitively.
      expect(files(0)[0]).to.equal("identity/v1/auth.proto");
      expect(files(0)).to.include.members(["google/api/annotations.proto", "google/api/http.proto", "google/protobuf/descriptor.proto", "identity/v1/options.proto", "identity/v1/common.proto", "google/protobuf/timestamp.proto"]);
      // Later answers always carry the file asked for, but not imports sent already.
      expect(files(1)).to.deep.equal(["identity/v1/common.proto"]);
      expect(files(2)).to.deep.equal(["identity/v1/auth.proto"]);
      expect(files(3)[0]).to.equal("identity/v1/points.proto");
      expect(files(3)).not.to.include("google/api/annotations.proto");
      expect(files(4)).to.deep.equal(["identity/v1/options.proto"]);
      const numbers = answers[5]!;
      expect(numbers.case === "allExtensionNumbersResponse" && numbers.value.extensionNumber).to.include.members([50001, 72295728]);
      const missing = answers[6]!;
      expect(missing.case === "errorResponse" && missing.value.errorCode).to.equal(Code.NotFound);
    });

    it("falls back to v1alpha reflection", async () => {
      const { stdout } = await run(buf, ["curl", "--http2-prior-knowledge", "--reflect-protocol", "grpc-v1alpha", "--list-methods", server.url]);
      expect(stdout).to.contain("identity.v1.UserAuthService/GetMe");
      expect(stdout).to.contain("identity.v1.PointsService/AdjustPoints");
    });
  });

  describe("health and metrics over HTTP", () => {
    it("answers /healthz and /readyz, and 503 naming the failed check", async () => {
      const healthz = await fetch(`${server.url}/healthz`);
      expect([healthz.status, await healthz.json()]).to.deep.equal([200, { status: "ok" }]);
      const ready = await fetch(`${server.url}/readyz`);
      expect([ready.status, await ready.json()]).to.deep.equal([200, { status: "ok", checks: { postgres: "ok", redis: "ok", switch: "ok" } }]);
      failing = true;
      try {
        const notReady = await fetch(`${server.url}/readyz`);
        expect([notReady.status, await notReady.json()]).to.deep.equal([503, { status: "unavailable", checks: { postgres: "ok", redis: "ok", switch: "failed" } }]);
      } finally {
        failing = false;
      }
    });

    it("counts RPCs by service, method and code, and plain routes by route and status", async () => {
      const ok = { service: "identity.v1.UserAuthService", method: "GetMe", code: "ok" };
      const okBefore = await counterValue(server.url, "identity_rpc_requests_total", ok);
      const healthBefore = await counterValue(server.url, "identity_http_requests_total", { route: "healthz", method: "GET", status: "200" });
      await connectJson(server.url, "identity.v1.UserAuthService/GetMe", "{}");
      await connectJson(server.url, "identity.v1.UserAuthService/GetMe", "{}");
      await fetch(`${server.url}/healthz`);
      expect(await counterValue(server.url, "identity_rpc_requests_total", ok)).to.equal(okBefore + 2);
      expect(await counterValue(server.url, "identity_http_requests_total", { route: "healthz", method: "GET", status: "200" })).to.equal(healthBefore + 1);
      const text = await (await fetch(`${server.url}/metrics`)).text();
      expect(text).to.match(/identity_rpc_duration_seconds_count\{service="identity.v1.UserAuthService",method="GetMe"\} \d+/);
      expect(text).to.contain("process_cpu_seconds_total");
    });
  });

  describe("plain routes", () => {
    it("get the router and the request meta, and readBody enforces the limit", async () => {
      const res = await fetch(`${server.url}/test/echo`, { method: "POST", body: "hello", headers: { "x-request-id": "req-plain-00001" } });
      const body = (await res.json()) as { bytes: number; rpcs: number; requestId: string };
      expect(body.bytes).to.equal(5);
      // Every API method, Health (Check, Watch, List) and both reflection services.
      expect(body.rpcs).to.equal(apiServices.reduce((n, s) => n + s.methods.length, 0) + 3 + 2);
      expect(body.requestId).to.equal("req-plain-00001");
      const tooBig = await fetch(`${server.url}/test/echo`, { method: "POST", body: "x".repeat(maxRequestBytes + 1) });
      expect(tooBig.status).to.equal(429);
      expect(((await tooBig.json()) as { code: string }).code).to.equal("resource_exhausted");
    });

    it("answers internal 'Internal error' when a plain route throws", async () => {
      const res = await fetch(`${server.url}/test/boom`);
      expect([res.status, await res.json()]).to.deep.equal([500, { code: "internal", message: "Internal error" }]);
    });
  });

  describe("CORS", () => {
    it("answers an allowed preflight and decorates responses", async () => {
      const preflight = await fetch(`${server.url}/identity.v1.UserAuthService/GetMe`, {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type,connect-protocol-version,authorization" },
      });
      expect(preflight.status).to.equal(204);
      expect(preflight.headers.get("access-control-allow-origin")).to.equal(origin);
      const allowed = preflight.headers.get("access-control-allow-headers")!.toLowerCase();
      for (const h of ["content-type", "connect-protocol-version", "authorization", "x-grpc-web"]) expect(allowed).to.contain(h);

      const res = await connectJson(server.url, "identity.v1.UserAuthService/GetMe", "{}", { origin });
      expect(res.headers.get("access-control-allow-origin")).to.equal(origin);
      expect(res.headers.get("access-control-expose-headers")!.toLowerCase()).to.contain("grpc-status").and.contain("x-request-id");
      const plain = await fetch(`${server.url}/healthz`, { headers: { origin } });
      expect(plain.headers.get("access-control-allow-origin")).to.equal(origin);
    });

    it("gives no allow headers to another origin", async () => {
      const preflight = await fetch(`${server.url}/identity.v1.UserAuthService/GetMe`, {
        method: "OPTIONS",
        headers: { origin: "https://evil.example.com", "access-control-request-method": "POST" },
      });
      expect(preflight.headers.get("access-control-allow-origin")).to.equal(null);
      expect(preflight.headers.get("access-control-allow-methods")).to.equal(null);
    });
  });

  describe("TLS", () => {
    let tlsServer: RunningServer;
    let ca: Buffer;
    before(async () => {
      const [cert, key] = [join(tmp, "cert.pem"), join(tmp, "key.pem")];
      await run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", cert]);
      ca = await readFile(cert);
      // No trusted proxies here: X-Forwarded-For must be ignored.
      tlsServer = await startServer(deps({ TLS_CERT_FILE: cert, TLS_KEY_FILE: key }));
    });
    after(() => tlsServer?.close());

    it("serves Connect over HTTP/2 with ALPN and ignores X-Forwarded-For from an untrusted peer", async () => {
      expect(tlsServer.url).to.match(/^https:/);
      const client = createClient(UserAuthService, createConnectTransport({ baseUrl: tlsServer.url, httpVersion: "2", nodeOptions: { ca } }));
      const res = await client.getMe({}, { headers: { "x-forwarded-for": "203.0.113.7" } });
      expect(res.user?.username).to.equal("127.0.0.1");
    });

    it("serves HTTP/1.1 when the client asks for it", async () => {
      const { status, alpn } = await new Promise<{ status?: number; alpn: string | false | null }>((resolve, reject) => {
        https
          .get(`${tlsServer.url}/healthz`, { agent: new https.Agent({ ca, ALPNProtocols: ["http/1.1"] }) }, (res) => {
            res.resume();
            resolve({ status: res.statusCode, alpn: (res.socket as import("node:tls").TLSSocket).alpnProtocol });
          })
          .on("error", reject);
      });
      expect([status, alpn]).to.deep.equal([200, "http/1.1"]);
    });

    it("serves gRPC", async () => {
      const client = new grpc.Client(`127.0.0.1:${tlsServer.port}`, grpc.credentials.createSsl(ca), { "grpc.ssl_target_name_override": "localhost" });
      try {
        const res = await grpcUnary(client, "/identity.v1.UserAuthService/GetMe", GetMeRequestSchema, GetMeResponseSchema, create(GetMeRequestSchema));
        expect(res.user?.username).to.equal("127.0.0.1");
      } finally {
        client.close();
      }
    });
  });

  describe("lifecycle", () => {
    it("closes gracefully: in-flight calls finish, idle connections do not hold close up, new connections are refused", async () => {
      const srv = await startServer(deps({ SHUTDOWN_GRACE_SECONDS: "10" }));
      const h2 = createClient(UserAuthService, createConnectTransport({ baseUrl: srv.url, httpVersion: "2" }));
      const h1 = createClient(UserAuthService, createConnectTransport({ baseUrl: srv.url, httpVersion: "1.1" }));
      await h2.getMe({}); // leaves an idle HTTP/2 session
      const agent = new http.Agent({ keepAlive: true });
      await new Promise((resolve) => http.get(`${srv.url}/healthz`, { agent }, (res) => res.resume().on("end", resolve))); // an idle keep-alive socket
      const silent = net.connect(srv.port, "127.0.0.1"); // connected, nothing sent yet
      await new Promise((resolve) => silent.once("connect", resolve));
      const silentClosed = new Promise((resolve) => silent.once("close", resolve));

      const slow = [h1.login({ identifier: "500" }), h2.login({ identifier: "500" })];
      await sleep(100);
      const started = Date.now();
      const closing = srv.close();
      expect(await connectionRefused(srv.port)).to.equal(true);
      const results = await Promise.all(slow);
      expect(results.map((r) => r.userId)).to.deep.equal(["slow", "slow"]);
      await closing;
      await silentClosed;
      expect(Date.now() - started).to.be.lessThan(2000);
      agent.destroy();
    });

    it("tells calls still running at the grace deadline to stop, then ends them", async () => {
      const srv = await startServer(deps({ SHUTDOWN_GRACE_SECONDS: "1" }));
      const client = createClient(UserAuthService, createConnectTransport({ baseUrl: srv.url, httpVersion: "2" }));
      const call = client.login({ identifier: "15000" }).catch((e: unknown) => ConnectError.from(e));
      await sleep(100);
      const started = Date.now();
      await srv.close();
      expect(Date.now() - started).to.be.within(900, 2500);
      const err = await call;
      expect(err).to.be.instanceOf(ConnectError);
      expect([(err as ConnectError).code, (err as ConnectError).rawMessage]).to.deep.equal([Code.Unavailable, "Server is shutting down"]);
    });

    it("tells every gRPC call still running at the grace deadline to stop (unavailable)", async () => {
      const srv = await startServer(deps({ SHUTDOWN_GRACE_SECONDS: "1" }));
      const client = new grpc.Client(`127.0.0.1:${srv.port}`, grpc.credentials.createInsecure());
      try {
        // Calls that answer in 30 and 40 ms leave the calls in flight from the middle, first.
        const calls = ["15000", "30", "15000", "40", "15000"].map((ms) =>
          grpcUnary(client, "/identity.v1.UserAuthService/Login", LoginRequestSchema, LoginResponseSchema, create(LoginRequestSchema, { identifier: ms })).then(
            (res) => res.userId,
            (e: grpc.ServiceError) => [e.code, e.details],
          ),
        );
        await sleep(300);
        await srv.close();
        const stopped = [grpc.status.UNAVAILABLE, "Server is shutting down"];
        expect(await Promise.all(calls)).to.deep.equal([stopped, "slow", stopped, "slow", stopped]);
      } finally {
        client.close();
      }
    });

    it("answers calls whose handler ignores its signal unavailable at the grace, with a status (gRPC trailers, Connect error body), not a reset", async () => {
      const srv = await startServer(deps({ SHUTDOWN_GRACE_SECONDS: "1" }));
      const client = new grpc.Client(`127.0.0.1:${srv.port}`, grpc.credentials.createInsecure());
      const connect = createClient(UserAuthService, createConnectTransport({ baseUrl: srv.url, httpVersion: "1.1" }));
      try {
        const request = create(RefreshTokenRequestSchema, { refreshToken: "6000" });
        const viaGrpc = grpcUnary(client, "/identity.v1.UserAuthService/RefreshToken", RefreshTokenRequestSchema, RefreshTokenResponseSchema, request).then(
          () => "answered",
          (e: grpc.ServiceError) => [e.code, e.details],
        );
        const viaConnect = connect.refreshToken(request).then(
          () => "answered",
          (e: unknown) => [ConnectError.from(e).code, ConnectError.from(e).rawMessage],
        );
        await sleep(300);
        await srv.close();
        expect(await viaGrpc).to.deep.equal([grpc.status.UNAVAILABLE, "Server is shutting down"]);
        expect(await viaConnect).to.deep.equal([Code.Unavailable, "Server is shutting down"]);
      } finally {
        client.close();
      }
    });

    it("gives handlers the request an interceptor passed on, over gRPC as over Connect", async () => {
      const replace: Interceptor = (next) => (req) => next({ ...req, header: new Headers([...req.header, ["x-echo", "from-interceptor"]]) });
      // What the next interceptor sees of the copy: the url and signal of the call (spread copied them).
      const seen: Array<[url: string, signal: boolean]> = [];
      const inspect: Interceptor = (next) => (req) => {
        seen.push([req.url, req.signal instanceof AbortSignal && !req.signal.aborted]);
        return next(req);
      };
      const srv = await startServer(deps({}, { interceptors: [replace, inspect] }));
      const client = new grpc.Client(`127.0.0.1:${srv.port}`, grpc.credentials.createInsecure());
      try {
        const viaGrpc = await grpcUnary(client, "/identity.v1.UserAuthService/GetMe", GetMeRequestSchema, GetMeResponseSchema, create(GetMeRequestSchema));
        const viaConnect = await createClient(UserAuthService, createConnectTransport({ baseUrl: srv.url, httpVersion: "2" })).getMe({});
        expect([viaGrpc.user?.phoneNumber, viaConnect.user?.phoneNumber]).to.deep.equal(["from-interceptor", "from-interceptor"]);
        const url = `${srv.url}/identity.v1.UserAuthService/GetMe`;
        expect(seen).to.deep.equal([
          [url, true],
          [url, true],
        ]);
      } finally {
        client.close();
        await srv.close();
      }
    });

    it("enforces the header timeout on connections the inner servers never listened for", async () => {
      const srv = await startServer(deps({}, { timeouts: { headersMs: 300 } }));
      try {
        const socket = net.connect(srv.port, "127.0.0.1");
        socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n"); // headers never finished
        const started = Date.now();
        const answer = await new Promise<string>((resolve) => {
          let data = "";
          socket.on("data", (d: Buffer) => (data += d.toString()));
          socket.on("close", () => resolve(data));
        });
        expect(answer).to.match(/^HTTP\/1.1 408/);
        expect(Date.now() - started).to.be.lessThan(2000);
      } finally {
        await srv.close();
      }
    });
  });
});
