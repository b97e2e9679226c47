// The REST gateway in front of a real connect-node server: small test implementations of
// a few identity services stand in for the real ones; requests go over HTTP/1.1 (fetch)
// and HTTP/2 (node:http2), through the router's interceptors.
import { getOption, type DescService } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createContextValues, type ConnectRouter, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { expect } from "chai";
import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { UserAuthService } from "../../gen/identity/v1/auth_pb.js";
import { DeviceService } from "../../gen/identity/v1/device_pb.js";
import { KycDecision, KycService, KycStatus } from "../../gen/identity/v1/kyc_pb.js";
import { auth, AuthPolicy } from "../../gen/identity/v1/options_pb.js";
import { PointsService } from "../../gen/identity/v1/points_pb.js";
import type { RequestMeta } from "../../src/domain/caller.js";
import { requestMetaKey } from "../../src/server/calls/context.js";
import { createRestGateway } from "../../src/server/rest/gateway.js";
import { createUnaryCalls } from "../../src/server/unary/calls.js";
import type { NodeRequest, NodeResponse, PlainRoute } from "../../src/server/http/plain.js";
import { decodePathValue, parsePathTemplate } from "../../src/server/rest/path.js";

interface Seen {
  rpc: string;
  request: unknown;
  authorization: string | null;
  meta: RequestMeta;
}

const GOOD = "Bearer good-token";
const dateJoined = new Date("2024-01-02T03:04:05Z");

describe("REST gateway (e2e)", () => {
  const seen: Seen[] = [];
  let server: http.Server;
  let base: string;

  const record = (rpc: string, request: unknown, ctx: HandlerContext): void => {
    seen.push({ rpc, request, authorization: ctx.requestHeader.get("authorization"), meta: ctx.values.get(requestMetaKey) });
  };

  // Stands in for the server's auth interceptor: the policy option decides, a fixed token passes.
  const fakeAuth: Interceptor = (next) => async (req) => {
    if (getOption(req.method, auth) !== AuthPolicy.NONE && req.header.get("authorization") !== GOOD) {
      throw new ConnectError("Authentication required", Code.Unauthenticated);
    }
    const res = await next(req);
    res.header.set("x-interceptor", "auth");
    return res;
  };

  const contextValuesFor = (req: NodeRequest) =>
    createContextValues().set(requestMetaKey, {
      ip: req.socket.remoteAddress ?? "",
      userAgent: String(req.headers["user-agent"] ?? ""),
      requestId: String(req.headers["x-request-id"] ?? "generated"),
    });

  function routes(router: ConnectRouter): void {
    router.service(UserAuthService, {
      login(req, ctx) {
        record("Login", req, ctx);
        return { userId: "u-1", accessToken: "at-1", refreshToken: "rt-1", expiresIn: 900 };
      },
      logout(req, ctx) {
        record("Logout", req, ctx);
        return { message: "Logged out" };
      },
      getMe(req, ctx) {
        record("GetMe", req, ctx);
        return { user: { id: "u-1", username: "ada", isActive: true, dateJoined: timestampFromDate(dateJoined) } };
      },
      revokeSession(req, ctx) {
        record("RevokeSession", req, ctx);
        if (req.sessionId === "missing") throw new ConnectError("no such session", Code.NotFound);
        return {};
      },
    });
    router.service(KycService, {
      reviewKyc(req, ctx) {
        record("ReviewKyc", req, ctx);
        if (req.decision === KycDecision.UNSPECIFIED) {
          throw new ConnectError("decision: required", Code.InvalidArgument, undefined, [
            { desc: BadRequestSchema, value: { fieldViolations: [{ field: "decision", description: "required" }] } },
          ]);
        }
        const approved = req.decision === KycDecision.APPROVE;
        return { kyc: { userId: req.userId, status: approved ? KycStatus.APPROVED : KycStatus.REJECTED, rejectionReason: req.rejectionReason } };
      },
      listKycSubmissions(req, ctx) {
        record("ListKycSubmissions", req, ctx);
        return {};
      },
    });
    router.service(PointsService, {
      listPointsTransactions(req, ctx) {
        record("ListPointsTransactions", req, ctx);
        const createdAt = timestampFromDate(dateJoined);
        return { transactions: [{ id: "t-1", userId: "u-1", delta: -5n, balanceAfter: 10n, reason: "spent", createdAt }], nextPageToken: "p2" };
      },
    });
  }

  const services: DescService[] = [UserAuthService, KycService, PointsService];
  let gateway: PlainRoute;
  // The server's own call engine serves the REST calls; connect-node only routes to the gateway here.
  const calls = createUnaryCalls({ interceptors: [fakeAuth], startCall: () => () => {}, readMaxBytes: 2048, shutdownSignal: new AbortController().signal });
  const handler = connectNodeAdapter({
    interceptors: [fakeAuth],
    contextValues: contextValuesFor,
    routes(r) {
      routes(calls.recording(r));
    },
    fallback(req, res) {
      const url = new URL(req.url ?? "/", "http://localhost");
      // connect-node narrows the response type for its own writes; it is the Node response.
      void Promise.resolve(gateway(req, res as NodeResponse, url)).then((handled) => {
        if (!handled) {
          res.writeHead(404, { "content-type": "text/plain" });
          res.end("not a REST path");
        }
      });
    },
  });

  before(async () => {
    gateway = createRestGateway({ calls, contextValuesFor, services, maxBodyBytes: 2048, logger: pino({ level: "silent" }) }).route;
    server = http.createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  beforeEach(() => {
    seen.length = 0;
  });

  async function call(method: string, path: string, init: { body?: unknown; headers?: Record<string, string> } = {}) {
    const raw = typeof init.body === "string" ? init.body : init.body === undefined ? undefined : JSON.stringify(init.body);
    const res = await fetch(base + path, {
      method,
      body: raw,
      headers: { ...(raw === undefined ? {} : { "content-type": "application/json" }), ...init.headers },
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, json: res.headers.get("content-type") === "application/json" ? (JSON.parse(text) as Record<string, unknown>) : undefined };
  }

  const authed = { authorization: GOOD };

  describe("requests and responses", () => {
    it("answers with snake_case fields, default values included", async () => {
      const res = await call("POST", "/api/auth/login", { body: { identifier: "ada@example.com", verification_token: "vt" } });
      expect(res.status).to.equal(200);
      expect(res.headers.get("content-type")).to.equal("application/json");
      expect(res.json).to.deep.equal({ user_id: "u-1", access_token: "at-1", refresh_token: "rt-1", expires_in: 900, session_id: "", account_restored: false });
    });

    it("accepts proto (snake_case) and JSON (lowerCamelCase) field names, nested too", async () => {
      await call("POST", "/api/auth/login", { body: { identifier: "a", verification_token: "v1", device: { device_type: "DEVICE_TYPE_IOS" } } });
      await call("POST", "/api/auth/login", { body: { identifier: "b", verificationToken: "v2", device: { deviceType: "DEVICE_TYPE_ANDROID", deviceName: "Pixel" } } });
      const [first, second] = seen.map((s) => s.request as { verificationToken: string; device?: { deviceType: number; deviceName: string } });
      expect(first).to.include({ verificationToken: "v1" });
      expect(first?.device?.deviceType).to.equal(2);
      expect(second).to.include({ verificationToken: "v2" });
      expect(second?.device).to.include({ deviceType: 1, deviceName: "Pixel" });
    });

    it("ignores unknown body fields, as the Connect routes do", async () => {
      const res = await call("POST", "/api/auth/login", { body: { identifier: "a", verification_token: "v", shoe_size: 44 } });
      expect(res.status).to.equal(200);
    });

    it("passes the Authorization header and the server's context values to the handler", async () => {
      const res = await call("POST", "/api/auth/logout", { headers: { ...authed, "user-agent": "app/1.0", "x-request-id": "req-42" } });
      expect(res.status).to.equal(200);
      expect(res.json).to.deep.equal({ message: "Logged out" });
      expect(seen).to.have.length(1);
      expect(seen[0]!.authorization).to.equal(GOOD);
      expect(seen[0]!.meta).to.deep.equal({ ip: "127.0.0.1", userAgent: "app/1.0", requestId: "req-42" });
      expect(res.headers.get("x-interceptor")).to.equal("auth");
    });

    it("narrows the answer to response_body, unset messages as null", async () => {
      const res = await call("GET", "/api/auth/me", { headers: authed });
      expect(res.status).to.equal(200);
      expect(res.json).to.deep.equal({
        id: "u-1",
        username: "ada",
        email: "",
        phone_number: "",
        is_active: true,
        is_staff: false,
        date_joined: "2024-01-02T03:04:05Z",
        last_login: null,
      });
    });

    it("binds path variables (percent-decoded), path winning over the body", async () => {
      let res = await call("DELETE", "/api/auth/sessions/s%201", { headers: authed });
      expect(res.status).to.equal(200);
      expect(res.json).to.deep.equal({});
      expect(seen[0]!.request).to.include({ sessionId: "s 1" });

      res = await call("POST", "/api/admin/kyc/u-9/review", { headers: authed, body: { user_id: "u-other", decision: "KYC_DECISION_REJECT", rejectionReason: "blurry" } });
      expect(res.status).to.equal(200);
      expect(seen[1]!.request).to.include({ userId: "u-9", decision: KycDecision.REJECT, rejectionReason: "blurry" });
      expect(res.json).to.deep.equal({
        user_id: "u-9",
        status: "KYC_STATUS_REJECTED",
        document_type: "DOCUMENT_TYPE_UNSPECIFIED",
        document_number_masked: "",
        document_front_url: "",
        document_back_url: "",
        rejection_reason: "blurry",
        submitted_at: null,
        verified_at: null,
        reviewed_by: "",
        document_number: "",
      });
    });

    it("types query parameters per field (numbers, enums, both name forms); int64 answered as strings", async () => {
      let res = await call("GET", "/api/users/wallet/transactions?page_size=5&pageToken=abc&unknown=1", { headers: authed });
      expect(res.status).to.equal(200);
      expect(seen[0]!.request).to.include({ pageSize: 5, pageToken: "abc" });
      expect(res.json).to.deep.equal({
        transactions: [{ id: "t-1", user_id: "u-1", delta: "-5", balance_after: "10", reason: "spent", created_at: "2024-01-02T03:04:05Z" }],
        next_page_token: "p2",
      });

      res = await call("GET", "/api/admin/kyc?status=KYC_STATUS_PENDING&page_size=2", { headers: authed });
      expect(res.status).to.equal(200);
      expect(seen[1]!.request).to.include({ status: KycStatus.PENDING, pageSize: 2 });
      expect(res.json).to.deep.equal({ submissions: [], next_page_token: "" });
    });

    it("answers HEAD like GET without a body, and OPTIONS with Allow", async () => {
      const head = await fetch(`${base}/api/auth/me`, { method: "HEAD", headers: authed });
      expect(head.status).to.equal(200);
      expect(Number(head.headers.get("content-length"))).to.be.greaterThan(0);
      expect(await head.text()).to.equal("");

      const options = await call("OPTIONS", "/api/auth/sessions/s1");
      expect(options.status).to.equal(204);
      expect(options.headers.get("allow")).to.equal("DELETE, OPTIONS");
    });
  });

  describe("errors", () => {
    it("maps a handler's Connect error to its HTTP status and { code, message, details }", async () => {
      const res = await call("DELETE", "/api/auth/sessions/missing", { headers: authed });
      expect(res.status).to.equal(404);
      expect(res.json).to.deep.equal({ code: "not_found", message: "no such session", details: [] });
    });

    it("decodes google.rpc error details", async () => {
      const res = await call("POST", "/api/admin/kyc/u-9/review", { headers: authed, body: {} });
      expect(res.status).to.equal(400);
      expect(res.json).to.deep.equal({
        code: "invalid_argument",
        message: "decision: required",
        details: [{ "@type": "type.googleapis.com/google.rpc.BadRequest", field_violations: [{ field: "decision", description: "required" }] }],
      });
    });

    it("runs the auth interceptor: no token → 401", async () => {
      const res = await call("GET", "/api/auth/me");
      expect(res.status).to.equal(401);
      expect(res.json).to.deep.equal({ code: "unauthenticated", message: "Authentication required", details: [] });
      expect(seen).to.have.length(0);
    });

    it("refuses a bad query value with a field violation", async () => {
      const res = await call("GET", "/api/admin/kyc?page_size=ten", { headers: authed });
      expect(res.status).to.equal(400);
      expect(res.json?.code).to.equal("invalid_argument");
      const [detail] = res.json?.details as { "@type": string; field_violations: { field: string; description: string }[] }[];
      expect(detail?.["@type"]).to.equal("type.googleapis.com/google.rpc.BadRequest");
      expect(detail?.field_violations).to.have.length(1);
      expect(detail?.field_violations[0]).to.include({ field: "page_size" });
      expect(detail?.field_violations[0]?.description).to.match(/int32/);
      const unknownEnum = await call("GET", "/api/admin/kyc?status=KYC_STATUS_LOST", { headers: authed });
      expect(unknownEnum.status).to.equal(400);
      expect(seen).to.have.length(0);
    });

    it("answers an unknown /api/ path with a JSON 404 and leaves other paths alone", async () => {
      const res = await call("GET", "/api/nothing/here");
      expect(res.status).to.equal(404);
      expect(res.json).to.deep.include({ code: "not_found", details: [] });
      expect(res.json?.message).to.be.a("string").that.is.not.empty;

      const other = await call("GET", "/elsewhere");
      expect(other.status).to.equal(404);
      expect(other.text).to.equal("not a REST path");
    });

    it("answers a known path with another method 405 and Allow", async () => {
      let res = await call("GET", "/api/auth/login");
      expect(res.status).to.equal(405);
      expect(res.headers.get("allow")).to.equal("POST, OPTIONS");
      expect(res.json?.code).to.equal("unimplemented");

      res = await call("POST", "/api/auth/me", { body: {} });
      expect(res.status).to.equal(405);
      expect(res.headers.get("allow")).to.equal("GET, HEAD, OPTIONS");
    });

    it("refuses malformed JSON with 400 invalid_argument", async () => {
      const res = await call("POST", "/api/auth/login", { body: '{"identifier": ' });
      expect(res.status).to.equal(400);
      expect(res.json).to.deep.include({ code: "invalid_argument", details: [] });
      const wrongType = await call("POST", "/api/auth/login", { body: { identifier: 7 } });
      expect(wrongType.status).to.equal(400);
      expect(wrongType.json?.code).to.equal("invalid_argument");
      expect(seen).to.have.length(0);
    });

    it("refuses a body over the limit with 413 resource_exhausted, and a non-JSON body with 415", async () => {
      const big = await call("POST", "/api/auth/login", { body: { identifier: "x".repeat(4096) } });
      expect(big.status).to.equal(413);
      expect(big.json?.code).to.equal("resource_exhausted");

      const form = await call("POST", "/api/auth/login", { body: "identifier=a", headers: { "content-type": "application/x-www-form-urlencoded" } });
      expect(form.status).to.equal(415);
      expect(seen).to.have.length(0);
    });
  });

  it("serves HTTP/2 callers too", async () => {
    const h2 = http2.createServer(handler);
    await new Promise<void>((resolve) => h2.listen(0, "127.0.0.1", resolve));
    const session = http2.connect(`http://127.0.0.1:${(h2.address() as AddressInfo).port}`);
    try {
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request({ ":method": "GET", ":path": "/api/auth/me", authorization: GOOD });
        let status = 0;
        let body = "";
        stream.on("response", (headers) => (status = Number(headers[":status"])));
        stream.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
        stream.on("end", () => resolve({ status, body })).on("error", reject);
      });
      expect(status).to.equal(200);
      expect(JSON.parse(body)).to.include({ id: "u-1", username: "ada" });
    } finally {
      session.close();
      await new Promise((resolve) => h2.close(resolve));
    }
  });

  it("refuses to start when an annotated service is not served", () => {
    const options = { calls, contextValuesFor, services: [...services, DeviceService], maxBodyBytes: 1, logger: pino({ level: "silent" }) };
    expect(() => createRestGateway(options)).to.throw(/RegisterDevice.*not served as a unary method/);
  });
});

describe("REST path templates", () => {
  it("matches variables, multi-segment variables and verbs", () => {
    const t = parsePathTemplate("/v1/{name=shelves/*/books/*}:publish");
    expect(t.variables).to.deep.equal([{ fieldPath: "name", multiSegment: true }]);
    expect(t.openApiPath).to.equal("/v1/{name}:publish");
    expect(t.match("/v1/shelves/s1/books/b%2F2:publish")).to.deep.equal(["shelves/s1/books/b%2F2"]);
    expect(decodePathValue("shelves/s%201/books/b%2F2", true)).to.equal("shelves/s 1/books/b%2F2");
    expect(t.match("/v1/shelves/s1:publish")).to.equal(undefined);

    const simple = parsePathTemplate("/api/admin/kyc/{user_id}/review");
    expect(simple.match("/api/admin/kyc/u%2F1/review")).to.deep.equal(["u%2F1"]);
    expect(decodePathValue("u%2F1", false)).to.equal("u/1");
    expect(simple.match("/api/admin/kyc/a/b/review")).to.equal(undefined);
    expect(simple.literalSegments).to.equal(4);
  });

  it("refuses templates outside the grammar", () => {
    for (const bad of ["api/x", "/api//x", "/api/{}", "/api/{a=}", "/api/x*", "/api/{a-b}"]) {
      expect(() => parsePathTemplate(bad), bad).to.throw(/path template/);
    }
  });
});
