// The OpenAPI document of the API: every REST path of DESIGN §2 with its verb and auth,
// schemas in the gateway's JSON shape, and no dangling $ref.
import { expect } from "chai";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { buildOpenApiDocument, openApiRoute, type JsonSchema, type OpenApiDocument, type OpenApiOperation } from "../../src/server/rest/openapi.js";
import { apiServices } from "../../src/server/services.js";

// DESIGN §2: service, method, verb, path, auth.
const contract: Array<[string, string, string, string, string]> = [
  ["UserAuthService", "RequestOtp", "post", "/api/auth/otp/request", "optional_user"],
  ["UserAuthService", "VerifyOtp", "post", "/api/auth/otp/verify", "optional_user"],
  ["UserAuthService", "Register", "post", "/api/auth/register", "none"],
  ["UserAuthService", "Login", "post", "/api/auth/login", "none"],
  ["UserAuthService", "RefreshToken", "post", "/api/auth/token/refresh", "none"],
  ["UserAuthService", "Logout", "post", "/api/auth/logout", "user"],
  ["UserAuthService", "GetMe", "get", "/api/auth/me", "user"],
  ["UserAuthService", "ListSessions", "get", "/api/auth/sessions", "user"],
  ["UserAuthService", "RevokeSession", "delete", "/api/auth/sessions/{session_id}", "user"],
  ["UserAuthService", "RevokeAllSessions", "post", "/api/auth/sessions/revoke-all", "user"],
  ["UserAuthService", "ChangeIdentifier", "post", "/api/users/me/identifier", "user"],
  ["DeviceService", "RegisterDevice", "post", "/api/auth/device", "user"],
  ["DeviceService", "ListDevices", "get", "/api/users/devices", "user"],
  ["DeviceService", "DeactivateDevice", "delete", "/api/users/devices/{device_id}", "user"],
  ["ProfileService", "GetProfile", "get", "/api/users/profile", "user"],
  ["ProfileService", "UpdateProfile", "put", "/api/users/profile", "user"],
  ["ProfileService", "GetUsageStats", "get", "/api/users/analytics/usage-stats", "user"],
  ["KycService", "SubmitKyc", "post", "/api/users/kyc", "user"],
  ["KycService", "GetKycStatus", "get", "/api/users/kyc/status", "user"],
  ["KycService", "ListKycSubmissions", "get", "/api/admin/kyc", "staff"],
  ["KycService", "ReviewKyc", "post", "/api/admin/kyc/{user_id}/review", "staff"],
  ["PointsService", "GetWallet", "get", "/api/users/wallet", "user"],
  ["PointsService", "ListPointsTransactions", "get", "/api/users/wallet/transactions", "user"],
  ["PointsService", "AdjustPoints", "post", "/api/admin/points/adjust", "staff_or_service"],
  // DESIGN §10.
  ["AccountService", "DeleteAccount", "post", "/api/users/me/delete", "user"],
  ["AccountService", "ExportAccountData", "get", "/api/users/me/export", "user"],
  ["AccountService", "ListMyActivity", "get", "/api/users/me/activity", "user"],
  ["AdminService", "ListUsers", "get", "/api/admin/users", "staff"],
  ["AdminService", "GetUser", "get", "/api/admin/users/{user_id}", "staff_or_service"],
  ["AdminService", "SetUserActive", "post", "/api/admin/users/{user_id}/active", "staff"],
  ["AdminService", "RevokeUserSessions", "post", "/api/admin/users/{user_id}/sessions/revoke", "staff"],
  ["AdminService", "ListAuditLogs", "get", "/api/admin/audit-logs", "staff"],
];

describe("OpenAPI document", () => {
  const doc = buildOpenApiDocument(apiServices, { title: "Identity API", version: "1.0.0", serverUrl: "https://id.example.com" });
  const operations = Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([verb, op]) => ({ path, verb, op })));
  const op = (path: string, verb: string): OpenApiOperation => doc.paths[path]![verb]!;
  const schema = (name: string): JsonSchema => doc.components.schemas[name]!;

  it("is OpenAPI 3.1 with the given info and server", () => {
    expect(doc.openapi).to.equal("3.1.0");
    expect(doc.info).to.include({ title: "Identity API", version: "1.0.0" });
    expect(doc.servers).to.deep.equal([{ url: "https://id.example.com" }]);
    // Without a base URL: the host that serves the document (redocly's no-empty-servers).
    expect(buildOpenApiDocument(apiServices, { title: "Identity API", version: "1.0.0" }).servers).to.deep.equal([{ url: "/", description: "The host serving this document." }]);
  });

  it("lists exactly the REST paths of DESIGN §2, one operation per method", () => {
    const methods = apiServices.flatMap((s) => s.methods.map((m) => `${s.name}_${m.name}`));
    expect(operations.map((o) => o.op.operationId).sort()).to.deep.equal(methods.sort());
    expect(operations).to.have.length(contract.length);
    for (const [service, method, verb, path] of contract) {
      expect(doc.paths[path]?.[verb]?.operationId, `${verb} ${path}`).to.equal(`${service}_${method}`);
    }
  });

  it("requires the bearer scheme exactly on protected operations, and publishes the policy", () => {
    expect(doc.components.securitySchemes.bearerAuth).to.deep.equal({ type: "http", scheme: "bearer", bearerFormat: "JWT" });
    for (const [, , verb, path, policy] of contract) {
      const operation = op(path, verb);
      expect(operation["x-auth-policy"], path).to.equal(policy);
      if (policy === "none") {
        expect(operation.security, path).to.deep.equal([]);
        expect(operation.responses, path).to.not.have.property("401");
      } else if (policy === "optional_user") {
        // Anonymous or with a token: the empty requirement makes the bearer scheme optional.
        expect(operation.security, path).to.deep.equal([{}, { bearerAuth: [] }]);
        expect(operation.responses, path).to.have.property("401");
      } else {
        expect(operation.security, path).to.deep.equal([{ bearerAuth: [] }]);
        expect(operation.responses, path).to.have.property("401");
      }
      expect(operation.responses.hasOwnProperty("403"), path).to.equal(policy === "staff" || policy === "staff_or_service");
    }
    expect(op("/api/admin/points/adjust", "post").description).to.match(/staff.*service token/i);
  });

  it("resolves every $ref", () => {
    const refs: string[] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node && typeof node === "object") {
        for (const [key, value] of Object.entries(node)) {
          if (key === "$ref" && typeof value === "string") refs.push(value);
          else walk(value);
        }
      }
    };
    walk(doc);
    expect(refs.length).to.be.greaterThan(20);
    for (const ref of new Set(refs)) {
      expect(ref, ref).to.match(/^#\//);
      const target = ref
        .slice(2)
        .split("/")
        .reduce<unknown>((at, key) => (at as Record<string, unknown> | undefined)?.[key.replace(/~1/g, "/").replace(/~0/g, "~")], doc);
      expect(target, ref).to.be.an("object");
    }
  });

  it("describes path and query parameters with their types", () => {
    expect(op("/api/admin/kyc/{user_id}/review", "post").parameters).to.deep.equal([{ name: "user_id", in: "path", required: true, schema: { type: "string" } }]);
    expect(op("/api/users/wallet/transactions", "get").parameters).to.deep.equal([
      { name: "page_size", in: "query", required: false, description: 'Also accepted as "pageSize".', schema: { type: "integer", format: "int32" } },
      { name: "page_token", in: "query", required: false, description: 'Also accepted as "pageToken".', schema: { type: "string" } },
    ]);
    const kycList = op("/api/admin/kyc", "get").parameters!;
    expect(kycList.find((p) => p.name === "status")?.schema).to.deep.equal({ $ref: "#/components/schemas/identity.v1.KycStatus" });
    expect(op("/api/auth/me", "get").parameters).to.equal(undefined);
    // body "*": no query parameters.
    expect(op("/api/auth/login", "post").parameters).to.equal(undefined);
  });

  it("describes request bodies, leaving path-bound fields out", () => {
    expect(op("/api/auth/login", "post").requestBody?.content["application/json"].schema).to.deep.equal({ $ref: "#/components/schemas/identity.v1.LoginRequest" });
    const review = op("/api/admin/kyc/{user_id}/review", "post").requestBody?.content["application/json"].schema as { properties: Record<string, JsonSchema> };
    expect(Object.keys(review.properties)).to.deep.equal(["decision", "rejection_reason"]);
    expect(op("/api/auth/me", "get").requestBody).to.equal(undefined);
  });

  it("describes responses in the gateway's JSON shape, honouring response_body", () => {
    const body = (path: string, verb: string) => (op(path, verb).responses["200"] as { content: { "application/json": { schema: JsonSchema } } }).content["application/json"].schema;
    expect(body("/api/auth/me", "get")).to.deep.equal({ $ref: "#/components/schemas/identity.v1.User" });
    expect(body("/api/users/kyc", "post")).to.deep.equal({ $ref: "#/components/schemas/identity.v1.Kyc" });
    expect(body("/api/auth/login", "post")).to.deep.equal({ $ref: "#/components/schemas/identity.v1.LoginResponse" });
    expect(op("/api/auth/login", "post").responses.default).to.deep.equal({ $ref: "#/components/responses/Error" });

    expect(schema("identity.v1.User")).to.deep.equal({
      type: "object",
      properties: {
        id: { type: "string" },
        username: { type: "string" },
        email: { type: "string" },
        phone_number: { type: "string" },
        is_active: { type: "boolean" },
        is_staff: { type: "boolean" },
        date_joined: { type: ["string", "null"], format: "date-time" },
        last_login: { type: ["string", "null"], format: "date-time" },
      },
    });
    const stats = schema("identity.v1.GetUsageStatsResponse").properties as Record<string, JsonSchema>;
    expect(stats.points_earned).to.deep.equal({ type: "string", format: "int64", pattern: "^-?\\d+$" });
    expect(stats.kyc_status).to.deep.equal({ $ref: "#/components/schemas/identity.v1.KycStatus" });
    expect((schema("identity.v1.Session").properties as Record<string, JsonSchema>).device).to.deep.equal({
      anyOf: [{ $ref: "#/components/schemas/identity.v1.DeviceInfo" }, { type: "null" }],
    });
    // Only types the operations reach become components (GetMe answers the user itself).
    expect(doc.components.schemas).to.not.have.property("identity.v1.GetMeResponse");
    expect(stats.daily_activity).to.deep.equal({ type: "array", items: { $ref: "#/components/schemas/identity.v1.DailyActivity" } });
    expect(schema("identity.v1.KycStatus")).to.deep.equal({
      type: "string",
      enum: ["KYC_STATUS_UNSPECIFIED", "KYC_STATUS_NOT_SUBMITTED", "KYC_STATUS_PENDING", "KYC_STATUS_APPROVED", "KYC_STATUS_REJECTED"],
    });
    // proto3 `optional` fields may be absent from requests and null in answers.
    const update = schema("identity.v1.UpdateProfileRequest").properties as Record<string, JsonSchema>;
    expect(update.full_name).to.deep.equal({ type: ["string", "null"] });
    expect(schema("Error")).to.have.nested.property("properties.code.enum").that.includes("not_found");
  });

  it("is served at GET /openapi.json", async () => {
    const route = openApiRoute(doc);
    const server = http.createServer((req, res) => {
      void Promise.resolve(route(req, res, new URL(req.url ?? "/", "http://localhost"))).then((handled) => {
        if (!handled) res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const res = await fetch(`${base}/openapi.json`);
      expect(res.status).to.equal(200);
      expect(res.headers.get("content-type")).to.equal("application/json");
      expect((await res.json()) as OpenApiDocument).to.deep.equal(JSON.parse(JSON.stringify(doc)));
      const post = await fetch(`${base}/openapi.json`, { method: "POST" });
      expect(post.status).to.equal(405);
      expect(post.headers.get("allow")).to.equal("GET, HEAD");
      expect((await fetch(`${base}/other`)).status).to.equal(404);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
