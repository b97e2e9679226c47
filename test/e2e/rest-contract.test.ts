// The apps' REST contract (DESIGN §2): every path over plain HTTP/1.1 JSON against the real
// server, with the exact snake_case shapes, and the gateway's own answers (401/404/405).
import { expect } from "chai";
import { OtpPurpose, UserAuthService } from "../../gen/identity/v1/auth_pb.js";
import { rest, type Json } from "../support/account.js";
import { clientFor, signUp, testPhone, type SignedUp } from "../support/clients.js";
import { mintServiceToken } from "../support/service-token.js";
import { startTestServer, TEST_CODE, type TestServer } from "../support/server.js";

describe("REST contract (plain HTTP/1.1 JSON)", function () {
  let server: TestServer;
  let user: SignedUp;
  let staff: SignedUp;

  const call = (method: string, path: string, opts: { token?: string; body?: unknown } = {}) => rest(server, method, path, opts);

  const keys = (o: unknown) => Object.keys(o as Json).sort();

  before(async () => {
    server = await startTestServer();
    user = await signUp(server.url, { fullName: "Rest User" });
    staff = await signUp(server.url);
    await server.app.stores.models.User.update({ isStaff: true }, { where: { id: staff.userId } });
  });
  after(() => server?.close());

  describe("auth paths", () => {
    it("POST /api/auth/otp/request, /otp/verify, /register, /login, /token/refresh, /logout", async () => {
      const phone = testPhone();
      const req = await call("POST", "/api/auth/otp/request", { body: { identifier: phone, purpose: "OTP_PURPOSE_REGISTER" } });
      expect(req.status).to.equal(200);
      expect(req.body).to.deep.equal({ message: "A verification code has been sent", expires_in: 300, retry_after: 60 });

      const verify = await call("POST", "/api/auth/otp/verify", { body: { identifier: phone, otp: TEST_CODE, purpose: "OTP_PURPOSE_REGISTER" } });
      expect(verify.status).to.equal(200);
      expect(keys(verify.body)).to.deep.equal(["expires_in", "verification_token"]);

      // camelCase is accepted in requests too.
      const reg = await call("POST", "/api/auth/register", { body: { verificationToken: verify.body.verification_token, username: `rest_${Date.now() % 1e6}`, phone_number: phone } });
      expect(reg.status).to.equal(200);
      expect(keys(reg.body)).to.deep.equal(["access_token", "expires_in", "refresh_token", "session_id", "user_id"]);

      const auth = clientFor(UserAuthService, server.url);
      await auth.requestOtp({ identifier: phone, purpose: OtpPurpose.LOGIN });
      const { verificationToken } = await auth.verifyOtp({ identifier: phone, otp: TEST_CODE, purpose: OtpPurpose.LOGIN });
      const login = await call("POST", "/api/auth/login", { body: { identifier: phone, verification_token: verificationToken, device: { device_id: "d1", device_type: "DEVICE_TYPE_IOS" } } });
      expect(login.status).to.equal(200);
      // account_restored (DESIGN §10): false for an ordinary sign-in.
      expect(keys(login.body)).to.deep.equal(["access_token", "account_restored", "expires_in", "refresh_token", "session_id", "user_id"]);
      expect(login.body.account_restored).to.equal(false);
      expect(login.body.user_id).to.equal(reg.body.user_id);

      const refreshed = await call("POST", "/api/auth/token/refresh", { body: { refresh_token: login.body.refresh_token } });
      expect(refreshed.status).to.equal(200);
      expect(keys(refreshed.body)).to.deep.equal(["access_token", "expires_in", "refresh_token"]);

      const out = await call("POST", "/api/auth/logout", { token: refreshed.body.access_token as string, body: {} });
      expect(out).to.deep.include({ status: 200, body: { message: "Logged out" } });
    });

    it("GET /api/auth/me returns the user itself", async () => {
      const me = await call("GET", "/api/auth/me", { token: user.accessToken });
      expect(me.status).to.equal(200);
      expect(keys(me.body)).to.deep.equal(["date_joined", "email", "id", "is_active", "is_staff", "last_login", "phone_number", "username"]);
      expect(me.body).to.include({ id: user.userId, username: user.username, phone_number: user.phone, email: "", is_active: true, is_staff: false });
    });

    it("GET /api/auth/sessions and DELETE /api/auth/sessions/{session_id}", async () => {
      const other = await signUp(server.url);
      const list = await call("GET", "/api/auth/sessions", { token: other.accessToken });
      expect(list.status).to.equal(200);
      const sessions = list.body.sessions as Json[];
      expect(sessions).to.have.length(1);
      expect(keys(sessions[0])).to.deep.equal(["created_at", "current", "device", "expires_at", "ip_address", "last_used_at", "session_id", "user_agent"]);
      // Another user's session answers like a missing one.
      expect((await call("DELETE", `/api/auth/sessions/${other.sessionId}`, { token: user.accessToken })).status).to.equal(404);
      const del = await call("DELETE", `/api/auth/sessions/${other.sessionId}`, { token: other.accessToken });
      expect(del).to.deep.include({ status: 200, body: {} });
    });
  });

  describe("user-data paths", () => {
    it("POST /api/auth/device, GET /api/users/devices, DELETE /api/users/devices/{device_id}", async () => {
      const reg = await call("POST", "/api/auth/device", { token: user.accessToken, body: { device_id: "phone-1", fcm_token: "fcm-rest-1", device_type: "DEVICE_TYPE_ANDROID", device_name: "Pixel", app_version: "1.2.3", os_version: "15" } });
      expect(reg.status).to.equal(200);
      expect(keys(reg.body)).to.deep.equal(["app_version", "created_at", "device_id", "device_name", "device_type", "fcm_token", "is_active", "last_used", "os_version"]);
      expect(reg.body).to.include({ device_id: "phone-1", device_type: "DEVICE_TYPE_ANDROID", is_active: true });
      const list = await call("GET", "/api/users/devices", { token: user.accessToken });
      expect((list.body.devices as Json[]).map((d) => d.device_id)).to.deep.equal(["phone-1"]);
      expect((await call("DELETE", "/api/users/devices/phone-1", { token: user.accessToken })).status).to.equal(200);
      expect((await call("DELETE", "/api/users/devices/phone-1", { token: staff.accessToken })).status).to.equal(404);
    });

    it("GET and PUT /api/users/profile, GET /api/users/analytics/usage-stats", async () => {
      const got = await call("GET", "/api/users/profile", { token: user.accessToken });
      expect(got.status).to.equal(200);
      expect(keys(got.body)).to.deep.equal(["address", "avatar_url", "date_of_birth", "full_name", "is_profile_complete", "updated_at"]);
      expect(got.body).to.include({ full_name: "Rest User", is_profile_complete: false });
      const put = await call("PUT", "/api/users/profile", { token: user.accessToken, body: { date_of_birth: "1990-04-01", address: "1 Main St" } });
      expect(put.status).to.equal(200);
      expect(put.body).to.include({ full_name: "Rest User", date_of_birth: "1990-04-01", address: "1 Main St", is_profile_complete: true });
      const bad = await call("PUT", "/api/users/profile", { token: user.accessToken, body: { avatar_url: "http://x" } });
      expect(bad.status).to.equal(400);
      expect(bad.body.code).to.equal("invalid_argument");

      const stats = await call("GET", "/api/users/analytics/usage-stats", { token: user.accessToken });
      expect(stats.status).to.equal(200);
      expect(keys(stats.body)).to.deep.equal([
        "account_age_days", "active_devices", "active_sessions", "daily_activity", "kyc_status", "last_activity", "last_login",
        "points_earned", "points_spent", "profile_completeness", "total_logins",
      ]);
      expect(stats.body.daily_activity).to.have.length(30);
      expect(stats.body.profile_completeness).to.equal(75);
    });

    it("POST /api/users/kyc, GET /api/users/kyc/status, GET /api/admin/kyc, POST /api/admin/kyc/{user_id}/review", async () => {
      const none = await call("GET", "/api/users/kyc/status", { token: user.accessToken });
      expect(none.body.status).to.equal("KYC_STATUS_NOT_SUBMITTED");
      const sub = await call("POST", "/api/users/kyc", { token: user.accessToken, body: { document_type: "DOCUMENT_TYPE_PASSPORT", document_number: "X1234567", document_front_url: "https://docs.example.com/f.jpg" } });
      expect(sub.status).to.equal(200);
      expect(sub.body).to.include({ user_id: user.userId, status: "KYC_STATUS_PENDING", document_number_masked: "****4567", document_number: "" });
      expect((await call("POST", "/api/users/kyc", { token: user.accessToken, body: { document_type: "DOCUMENT_TYPE_PASSPORT", document_number: "X1234567", document_front_url: "https://docs.example.com/f.jpg" } })).status).to.equal(400);

      expect((await call("GET", "/api/admin/kyc?status=KYC_STATUS_PENDING", { token: user.accessToken })).status).to.equal(403);
      const list = await call("GET", "/api/admin/kyc?status=KYC_STATUS_PENDING&page_size=50", { token: staff.accessToken });
      expect(list.status).to.equal(200);
      const mine = (list.body.submissions as Json[]).find((s) => s.user_id === user.userId)!;
      expect(mine).to.include({ document_number: "X1234567" });
      expect(list.body).to.have.property("next_page_token");

      const review = await call("POST", `/api/admin/kyc/${user.userId}/review`, { token: staff.accessToken, body: { decision: "KYC_DECISION_APPROVE" } });
      expect(review.status).to.equal(200);
      expect(review.body).to.include({ user_id: user.userId, status: "KYC_STATUS_APPROVED", reviewed_by: staff.userId });
      const status = await call("GET", "/api/users/kyc/status", { token: user.accessToken });
      expect(keys(status.body)).to.deep.equal(["document_type", "rejection_reason", "status", "submitted_at", "verified_at"]);
      expect(status.body.status).to.equal("KYC_STATUS_APPROVED");
    });

    it("GET /api/users/wallet, GET /api/users/wallet/transactions, POST /api/admin/points/adjust", async () => {
      const service = await mintServiceToken(server.env, "loyalty");
      const body = { user_id: user.userId, delta: "250", reason: "welcome bonus", idempotency_key: `rest-${Date.now()}` };
      expect((await call("POST", "/api/admin/points/adjust", { token: user.accessToken, body })).status).to.equal(403);
      const adj = await call("POST", "/api/admin/points/adjust", { token: service, body });
      expect(adj.status).to.equal(200);
      expect(keys(adj.body)).to.deep.equal(["balance", "points", "total_points", "transaction"]);
      expect(adj.body).to.include({ balance: "2.50", points: "250", total_points: "250" });
      expect(keys(adj.body.transaction)).to.deep.equal(["balance_after", "created_at", "delta", "id", "reason", "user_id"]);
      const again = await call("POST", "/api/admin/points/adjust", { token: service, body });
      expect(again.body).to.deep.equal(adj.body);

      const wallet = await call("GET", "/api/users/wallet", { token: user.accessToken });
      expect(wallet.body).to.include({ balance: "2.50", points: "250", total_points: "250" });
      expect(keys(wallet.body)).to.deep.equal(["balance", "last_updated", "points", "total_points"]);
      const txs = await call("GET", "/api/users/wallet/transactions?page_size=10", { token: user.accessToken });
      expect((txs.body.transactions as Json[]).map((t) => t.delta)).to.deep.equal(["250"]);
      expect(txs.body.next_page_token).to.equal("");
    });
  });

  describe("the gateway's own answers", () => {
    it("401 without a token, 404 for an unknown /api path, 405 with Allow for a known path's wrong method", async () => {
      const noToken = await call("GET", "/api/users/profile");
      expect(noToken.status).to.equal(401);
      expect(noToken.body).to.include({ code: "unauthenticated" });
      const unknown = await call("GET", "/api/nope");
      expect(unknown.status).to.equal(404);
      expect(unknown.body.code).to.equal("not_found");
      const wrong = await call("DELETE", "/api/users/profile", { token: user.accessToken });
      expect(wrong.status).to.equal(405);
      expect(wrong.headers.get("allow")).to.match(/GET/);
    });

    it("publishes an OpenAPI 3.1 document listing every REST path", async () => {
      const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
      expect(doc.openapi).to.match(/^3\.1/);
      const ops = Object.entries(doc.paths).flatMap(([p, item]) => Object.keys(item).filter((m) => ["get", "post", "put", "delete"].includes(m)).map((m) => `${m.toUpperCase()} ${p}`));
      expect(ops).to.have.members([
        "POST /api/auth/otp/request", "POST /api/auth/otp/verify", "POST /api/auth/register", "POST /api/auth/login",
        "POST /api/auth/token/refresh", "POST /api/auth/logout", "GET /api/auth/me", "GET /api/auth/sessions",
        "DELETE /api/auth/sessions/{session_id}", "POST /api/auth/device", "GET /api/users/devices",
        "DELETE /api/users/devices/{device_id}", "GET /api/users/profile", "PUT /api/users/profile",
        "GET /api/users/analytics/usage-stats", "POST /api/users/kyc", "GET /api/users/kyc/status", "GET /api/admin/kyc",
        "POST /api/admin/kyc/{user_id}/review", "GET /api/users/wallet", "GET /api/users/wallet/transactions", "POST /api/admin/points/adjust",
        // DESIGN §10
        "POST /api/auth/sessions/revoke-all", "POST /api/users/me/identifier", "POST /api/users/me/delete", "GET /api/users/me/export", "GET /api/users/me/activity",
        "GET /api/admin/users", "GET /api/admin/users/{user_id}", "POST /api/admin/users/{user_id}/active",
        "POST /api/admin/users/{user_id}/sessions/revoke", "GET /api/admin/audit-logs",
      ]);
    });
  });
});
