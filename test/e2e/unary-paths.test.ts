// The server's own unary paths for Connect and REST (connect/unary.ts and rest/gateway.ts on
// unary/calls.ts), on each way a request reaches them:
//   h1         HTTP/1.1 (node's request and response objects);
//   h2         HTTP/2 without an Origin, served on the stream itself;
//   h2-origin  HTTP/2 with an Origin (browsers), through node's compatibility layer and CORS.
// Each way must answer alike: the same statuses, headers, bodies, error details, compression,
// deadlines, shutdown answers, log lines and metrics as the Connect protocol and the REST
// contract say. Raw clients, so that what is checked is what the server sent.
import http from "node:http";
import http2 from "node:http2";
import { gunzipSync, gzipSync } from "node:zlib";
import { setTimeout as sleep } from "node:timers/promises";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { expect } from "chai";
import pg from "pg";
import { GetMeResponseSchema, RequestOtpRequestSchema } from "../../gen/identity/v1/auth_pb.js";
import { signUp, testPhone, type SignedUp } from "../support/clients.js";
import { startTestServer, type TestServer } from "../support/server.js";

type Way = "h1" | "h2" | "h2-origin";
const WAYS: Way[] = ["h1", "h2", "h2-origin"];
const ORIGIN = "https://console.example.com";
/** A word per way, for profile names (which take letters only). */
const WORD: Record<Way, string> = { h1: "One", h2: "Two", "h2-origin": "Three" };
const MAX_REQUEST_BYTES = 4096;

interface Sent {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** The body as JSON (undefined when it is not JSON). */
  json: Record<string, unknown> | undefined;
}

function answerOf(status: number, raw: Record<string, unknown>, body: Buffer): Answer {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) if (!name.startsWith(":") && value !== undefined) headers[name] = String(value);
  let json: Record<string, unknown> | undefined;
  try {
    json = headers["content-type"]?.startsWith("application/json") && !headers["content-encoding"] ? (JSON.parse(body.toString("utf8")) as Record<string, unknown>) : undefined;
  } catch {
    json = undefined;
  }
  return { status, headers, body, json };
}

/** One request on the given way; an HTTP/2 session per server and way is reused. */
function createSender(url: string) {
  const sessions = new Map<Way, http2.ClientHttp2Session>();
  const session = (way: Way) => {
    let s = sessions.get(way);
    if (!s || s.closed || s.destroyed) {
      s = http2.connect(url);
      s.on("error", () => {});
      sessions.set(way, s);
    }
    return s;
  };
  const send = (way: Way, req: Sent, signal?: AbortSignal): Promise<Answer> => {
    const method = req.method ?? "POST";
    const headers = { ...(way === "h2-origin" ? { origin: ORIGIN } : {}), ...req.headers };
    if (way === "h1") {
      return new Promise((resolve, reject) => {
        const r = http.request(`${url}${req.path}`, { method, headers, agent: false, signal }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve(answerOf(res.statusCode ?? 0, res.headers, Buffer.concat(chunks))));
        });
        r.on("error", reject);
        r.end(req.body);
      });
    }
    return new Promise((resolve, reject) => {
      const stream = session(way).request({ ":method": method, ":path": req.path, ...headers }, { signal });
      let head: http2.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      stream.on("response", (h) => (head = h));
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => resolve(answerOf(Number(head[":status"]), head, Buffer.concat(chunks))));
      stream.on("error", reject);
      stream.end(req.body);
    });
  };
  const close = () => {
    for (const s of sessions.values()) s.close();
  };
  return { send, close };
}

const connectJson = (path: string, message: unknown, headers: Record<string, string> = {}): Sent => ({
  path: `/identity.v1.${path}`,
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(message),
});
const bearer = (user: SignedUp) => ({ authorization: `Bearer ${user.accessToken}` });

describe("the server's own Connect and REST paths, on every way in", function () {
  this.timeout(60_000);
  let server: TestServer;
  let sender: ReturnType<typeof createSender>;
  let db: pg.Client;
  let user: SignedUp;

  before(async () => {
    server = await startTestServer({ CORS_ORIGINS: ORIGIN, MAX_REQUEST_BYTES: String(MAX_REQUEST_BYTES) });
    sender = createSender(server.url);
    db = new pg.Client(server.env.DATABASE_URL);
    await db.connect();
    user = await signUp(server.url);
  });
  after(async () => {
    sender?.close();
    await db?.end();
    await server?.close();
  });

  /** What every answer of a way carries: the request id, Vary (CORS is configured), CORS headers only for an allowed Origin. */
  function expectFrontHeaders(way: Way, res: Answer, requestId?: string): void {
    if (requestId) expect(res.headers["x-request-id"]).to.equal(requestId);
    else expect(res.headers["x-request-id"]).to.match(/^[0-9a-f-]{36}$/);
    expect(res.headers.vary).to.equal("Origin");
    expect(res.headers["access-control-allow-origin"]).to.equal(way === "h2-origin" ? ORIGIN : undefined);
  }

  /** The sum of a counter's series that carry these labels. */
  const metric = async (labels: Record<string, string>, name = "identity_rpc_requests_total"): Promise<number> => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
    const lines = text.split("\n").filter((l) => l.startsWith(`${name}{`) && wanted.every((w) => l.includes(w)));
    return lines.reduce((sum, l) => sum + Number(l.split(" ").pop()), 0);
  };

  for (const way of WAYS) {
    describe(`Connect unary over ${way}`, () => {
      it("answers JSON: the message, content-type, request id; one log line and one count with protocol connect", async () => {
        const requestId = `req-${way}-connect-json`;
        const before = await metric({ method: "GetMe", code: "ok" });
        const res = await sender.send(way, connectJson("UserAuthService/GetMe", {}, { ...bearer(user), "x-request-id": requestId }));
        expect(res.status).to.equal(200);
        expect(res.headers["content-type"]).to.equal("application/json");
        expect(res.headers["content-length"]).to.equal(String(res.body.length));
        expect((res.json?.user as { id: string }).id).to.equal(user.userId);
        expectFrontHeaders(way, res, requestId);
        expect(await metric({ method: "GetMe", code: "ok" })).to.equal(before + 1);
        expect(server.logs.filter((l) => l.requestId === requestId).map((l) => [l.protocol, l.code, l.procedure])).to.deep.equal([["connect", "ok", "/identity.v1.UserAuthService/GetMe"]]);
      });

      it("answers binary (application/proto)", async () => {
        const res = await sender.send(way, { path: "/identity.v1.UserAuthService/GetMe", headers: { "content-type": "application/proto", ...bearer(user) }, body: Buffer.alloc(0) });
        expect([res.status, res.headers["content-type"]]).to.deep.equal([200, "application/proto"]);
        expect(fromBinary(GetMeResponseSchema, res.body).user?.id).to.equal(user.userId);
      });

      it("answers errors as Connect error JSON with the code's status: unauthenticated, and invalid_argument with BadRequest details", async () => {
        const noToken = await sender.send(way, connectJson("UserAuthService/GetMe", {}));
        expect([noToken.status, noToken.json]).to.deep.equal([401, { code: "unauthenticated", message: "Authentication required" }]);
        expectFrontHeaders(way, noToken);
        const bad = await sender.send(way, connectJson("UserAuthService/RequestOtp", { identifier: "x", purpose: "OTP_PURPOSE_REGISTER" }));
        expect(bad.status).to.equal(400);
        expect(bad.json?.code).to.equal("invalid_argument");
        expect((bad.json?.details as Array<{ type: string }>).map((d) => d.type)).to.deep.equal(["google.rpc.BadRequest"]);
      });

      it("answers resource_exhausted with Retry-After and RetryInfo (the resend cooldown)", async () => {
        const message = { identifier: testPhone(), purpose: "OTP_PURPOSE_REGISTER" };
        expect((await sender.send(way, connectJson("UserAuthService/RequestOtp", message))).status).to.equal(200);
        const again = await sender.send(way, connectJson("UserAuthService/RequestOtp", message));
        expect([again.status, again.json?.code]).to.deep.equal([429, "resource_exhausted"]);
        expect(Number(again.headers["retry-after"])).to.be.within(1, 60);
        expect((again.json?.details as Array<{ type: string }>).map((d) => d.type)).to.deep.equal(["google.rpc.RetryInfo"]);
      });

      it("answers a malformed Connect-Timeout-Ms, malformed JSON and an undecodable binary message with invalid_argument", async () => {
        const timeout = await sender.send(way, connectJson("UserAuthService/GetMe", {}, { ...bearer(user), "connect-timeout-ms": "soon" }));
        expect([timeout.status, timeout.json]).to.deep.equal([400, { code: "invalid_argument", message: "protocol error: invalid connect timeout value: soon" }]);
        const json = await sender.send(way, { ...connectJson("UserAuthService/GetMe", {}, bearer(user)), body: "{not json" });
        expect([json.status, json.json?.code]).to.deep.equal([400, "invalid_argument"]);
        const binary = await sender.send(way, { path: "/identity.v1.UserAuthService/RequestOtp", headers: { "content-type": "application/proto" }, body: Buffer.from("0f0f0f", "hex") });
        expect([binary.status, binary.json?.code]).to.deep.equal([400, "invalid_argument"]);
      });

      it("refuses a body over MAX_REQUEST_BYTES with resource_exhausted, declared or not", async () => {
        const big = JSON.stringify({ identifier: "x".repeat(MAX_REQUEST_BYTES) });
        const declared = await sender.send(way, { ...connectJson("UserAuthService/Login", {}), body: big, headers: { "content-type": "application/json", "content-length": String(big.length) } });
        expect([declared.status, declared.json?.code]).to.deep.equal([429, "resource_exhausted"]);
        if (way === "h1") return; // HTTP/1.1 bodies always declare their length here
        const streamed = await sender.send(way, { ...connectJson("UserAuthService/Login", {}), body: big });
        expect([streamed.status, streamed.json?.code]).to.deep.equal([429, "resource_exhausted"]);
      });

      it("reads a gzip body, and compresses a response of 1024 bytes or more only when the client accepts it", async () => {
        const gz = gzipSync(Buffer.from("{}"));
        const zipped = await sender.send(way, { path: "/identity.v1.UserAuthService/GetMe", headers: { "content-type": "application/json", "content-encoding": "gzip", ...bearer(user) }, body: gz });
        expect([zipped.status, (zipped.json?.user as { id: string }).id]).to.deep.equal([200, user.userId]);
        // GetMe is small: never compressed.
        const small = await sender.send(way, connectJson("UserAuthService/GetMe", {}, { ...bearer(user), "accept-encoding": "gzip" }));
        expect(small.headers["content-encoding"]).to.equal(undefined);
        // The account export is larger (and limited per hour: a user of its own).
        const exporter = await signUp(server.url);
        const exported = await sender.send(way, connectJson("AccountService/ExportAccountData", {}, { ...bearer(exporter), "accept-encoding": "br;q=0, gzip" }));
        expect([exported.status, exported.headers["content-encoding"]]).to.deep.equal([200, "gzip"]);
        const plain = gunzipSync(exported.body);
        expect(plain.length).to.be.greaterThanOrEqual(1024);
        expect(Number(exported.headers["content-length"])).to.equal(exported.body.length);
        expect((JSON.parse(plain.toString("utf8")) as { user: { id: string } }).user.id).to.equal(exporter.userId);
        const uncompressed = await sender.send(way, connectJson("AccountService/ExportAccountData", {}, bearer(exporter)));
        expect([uncompressed.headers["content-encoding"], uncompressed.body.length]).to.deep.equal([undefined, plain.length]);
      });

      it("answers deadline_exceeded at Connect-Timeout-Ms, the write cancelled and nothing committed", async () => {
        const fullName = `Late ${WORD[way]}`;
        const res = await withOutboxLocked(() => sender.send(way, connectJson("ProfileService/UpdateProfile", { fullName }, { ...bearer(user), "connect-timeout-ms": "300" })));
        expect([res.status, res.json]).to.deep.equal([504, { code: "deadline_exceeded", message: "the operation timed out" }]);
        await sleep(200);
        expect(await profileName()).not.to.equal(fullName);
      });
    });

    describe(`REST over ${way}`, () => {
      it("answers GET /api/auth/me with snake_case JSON, no-store, the request id; one log line with protocol rest, counted as an RPC only", async () => {
        const requestId = `req-${way}-rest-me`;
        const rpcs = await metric({ method: "GetMe", code: "ok" });
        const plainHttp = await metric({}, "identity_http_requests_total");
        const res = await sender.send(way, { method: "GET", path: "/api/auth/me", headers: { ...bearer(user), "x-request-id": requestId } });
        expect(res.status).to.equal(200);
        expect(res.headers).to.include({ "content-type": "application/json", "cache-control": "no-store", "content-length": String(res.body.length) });
        expect(res.json).to.include({ id: user.userId, is_active: true });
        expect(res.json).to.have.property("phone_number");
        expectFrontHeaders(way, res, requestId);
        expect(server.logs.filter((l) => l.requestId === requestId).map((l) => [l.protocol, l.code, l.procedure])).to.deep.equal([["rest", "ok", "/identity.v1.UserAuthService/GetMe"]]);
        // The /metrics read just before the call is the only plain HTTP request since then (a read
        // is counted once it is answered).
        expect(await metric({}, "identity_http_requests_total")).to.equal(plainHttp + 1);
        expect(await metric({ method: "GetMe", code: "ok" })).to.equal(rpcs + 1);
      });

      it("answers errors as { code, message, details }: 401, and 429 with Retry-After and a decoded RetryInfo", async () => {
        const noToken = await sender.send(way, { method: "GET", path: "/api/auth/me" });
        expect([noToken.status, noToken.json]).to.deep.equal([401, { code: "unauthenticated", message: "Authentication required", details: [] }]);
        expectFrontHeaders(way, noToken);
        const body = JSON.stringify({ identifier: testPhone(), purpose: "OTP_PURPOSE_REGISTER" });
        const headers = { "content-type": "application/json" };
        expect((await sender.send(way, { path: "/api/auth/otp/request", headers, body })).status).to.equal(200);
        const again = await sender.send(way, { path: "/api/auth/otp/request", headers, body });
        expect(again.status).to.equal(429);
        expect(Number(again.headers["retry-after"])).to.be.within(1, 60);
        expect((again.json?.details as Array<Record<string, unknown>>)[0]).to.include({ "@type": "type.googleapis.com/google.rpc.RetryInfo" });
      });

      it("reads path variables and query parameters", async () => {
        const activity = await sender.send(way, { method: "GET", path: "/api/users/me/activity?page_size=1", headers: bearer(user) });
        expect(activity.status).to.equal(200);
        expect(activity.json?.events).to.be.an("array").with.length.at.most(1);
        const badQuery = await sender.send(way, { method: "GET", path: "/api/users/me/activity?page_size=ten", headers: bearer(user) });
        expect([badQuery.status, badQuery.json?.code]).to.deep.equal([400, "invalid_argument"]);
        const session = await sender.send(way, { method: "DELETE", path: "/api/auth/sessions/00000000-0000-4000-8000-000000000000", headers: bearer(user) });
        expect([session.status, session.json?.code]).to.deep.equal([404, "not_found"]);
      });

      it("refuses malformed JSON (400), a body that is not JSON (415) and one over the limit (413)", async () => {
        const headers = { "content-type": "application/json" };
        const malformed = await sender.send(way, { path: "/api/auth/otp/request", headers, body: "{nope" });
        expect([malformed.status, malformed.json]).to.deep.equal([400, { code: "invalid_argument", message: "request body is not valid JSON", details: [] }]);
        const text = await sender.send(way, { path: "/api/auth/otp/request", headers: { "content-type": "text/plain" }, body: "hi" });
        expect([text.status, text.json?.code]).to.deep.equal([415, "invalid_argument"]);
        const big = await sender.send(way, { path: "/api/auth/otp/request", headers, body: JSON.stringify({ identifier: "x".repeat(MAX_REQUEST_BYTES) }) });
        expect([big.status, big.json?.code]).to.deep.equal([413, "resource_exhausted"]);
        if (way === "h1") expect(big.headers.connection).to.equal("close");
      });

      it("answers an unknown /api path 404, a wrong method 405 with Allow, OPTIONS 204 and HEAD without a body", async () => {
        const unknown = await sender.send(way, { method: "GET", path: "/api/no/such/thing" });
        expect([unknown.status, unknown.json?.code]).to.deep.equal([404, "not_found"]);
        const wrong = await sender.send(way, { method: "PUT", path: "/api/auth/me" });
        expect([wrong.status, wrong.headers.allow]).to.deep.equal([405, "GET, HEAD, OPTIONS"]);
        const options = await sender.send(way, { method: "OPTIONS", path: "/api/auth/me" });
        expect([options.status, options.headers.allow]).to.deep.equal([204, "GET, HEAD, OPTIONS"]);
        const head = await sender.send(way, { method: "HEAD", path: "/api/auth/me", headers: bearer(user) });
        expect([head.status, head.body.length]).to.deep.equal([200, 0]);
      });
    });
  }

  it("answers calls still running at the end of the shutdown grace unavailable, on every way and protocol", async function () {
    this.timeout(30_000);
    const other = await startTestServer({ CORS_ORIGINS: ORIGIN }, server.env);
    const otherSender = createSender(other.url);
    let closed: Promise<void> | undefined;
    try {
      const results = await withOutboxLocked(async () => {
        const calls = WAYS.flatMap((way) => [
          otherSender.send(way, connectJson("ProfileService/UpdateProfile", { fullName: `Shutdown ${WORD[way]}` }, bearer(user))),
          otherSender.send(way, { method: "PUT", path: "/api/users/profile", headers: { "content-type": "application/json", ...bearer(user) }, body: JSON.stringify({ full_name: `Shutdown ${WORD[way]}` }) }),
        ]);
        await sleep(300);
        closed = other.close();
        const answers = await Promise.all(calls);
        otherSender.close();
        // The stop completes while the lock is still held: every write was cancelled, including
        // those that started a statement after the first cancel request (store/transaction.ts;
        // these writes share one profile row, so one waits for another's before the outbox).
        expect(await Promise.race([closed.then(() => "stopped"), sleep(5000, "still stopping")])).to.equal("stopped");
        return answers;
      });
      expect(results.map((r) => [r.status, r.json?.code])).to.deep.equal(Array(WAYS.length * 2).fill([503, "unavailable"]));
    } finally {
      otherSender.close();
      await (closed ?? other.close());
    }
  });

  it("ends a call whose client went away (canceled), and rolls its write back, on every way and protocol", async () => {
    for (const way of WAYS) {
      for (const rest of [false, true]) {
        const requestId = `req-gone-${way}-${rest ? "rest" : "connect"}`;
        const fullName = `Gone ${WORD[way]} ${rest ? "Rest" : "Connect"}`;
        const headers = { "content-type": "application/json", "x-request-id": requestId, ...bearer(user) };
        const sent: Sent = rest ? { method: "PUT", path: "/api/users/profile", headers, body: JSON.stringify({ full_name: fullName }) } : connectJson("ProfileService/UpdateProfile", { fullName }, headers);
        await withOutboxLocked(async () => {
          const abort = new AbortController();
          const call = sender.send(way, sent, abort.signal).catch(() => "aborted");
          await sleep(200);
          abort.abort();
          expect(await call).to.equal("aborted");
          for (let i = 0; i < 40 && !server.logs.some((l) => l.requestId === requestId); i++) await sleep(25);
        });
        expect(server.logs.filter((l) => l.requestId === requestId).map((l) => l.code)).to.deep.equal(["canceled"]);
        expect(await profileName()).not.to.equal(fullName);
      }
    }
  });

  it("does not hand a Connect call with an Origin over HTTP/2 to the stream path (CORS applies), nor an unsupported Content-Encoding", async () => {
    const res = await sender.send("h2", { ...connectJson("UserAuthService/RequestOtp", {}), headers: { "content-type": "application/json", "content-encoding": "snappy" } });
    expect([res.status, res.headers["accept-encoding"]]).to.deep.equal([501, "gzip,br"]);
    const message = toBinary(RequestOtpRequestSchema, create(RequestOtpRequestSchema, { identifier: "x" }));
    const web = await sender.send("h2-origin", { path: "/identity.v1.UserAuthService/RequestOtp", headers: { "content-type": "application/proto" }, body: Buffer.from(message) });
    expect([web.status, web.headers["access-control-allow-origin"]]).to.deep.equal([400, ORIGIN]);
  });

  const profileName = async () => (await db.query<{ full_name: string | null }>("SELECT full_name FROM user_profiles WHERE user_id = $1", [user.userId])).rows[0]?.full_name ?? null;

  /** Runs `call` while the outbox is locked: UpdateProfile writes the profile, then waits there until the lock goes. */
  async function withOutboxLocked<T>(call: () => Promise<T>): Promise<T> {
    const lock = new pg.Client(server.env.DATABASE_URL);
    await lock.connect();
    try {
      await lock.query("BEGIN");
      await lock.query("LOCK TABLE outbox IN SHARE MODE");
      return await call();
    } finally {
      await lock.query("ROLLBACK").catch(() => {});
      await lock.end();
    }
  }
});
