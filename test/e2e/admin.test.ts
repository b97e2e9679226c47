// AdminService end to end (DESIGN §10): the real server, real clients (Connect JSON over
// HTTP/1.1, gRPC through connect-node, @grpc/grpc-js, REST), real PostgreSQL and Redis; users
// signed up through the OTP flow, staff made by setting users.is_staff, a service token
// minted with the project's command.
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import {
  AdminService,
  GetUserRequestSchema,
  GetUserResponseSchema,
  ListUsersRequestSchema,
  ListUsersResponseSchema,
} from "../../gen/identity/v1/admin_pb.js";
import { AccountService } from "../../gen/identity/v1/account_pb.js";
import { OtpPurpose, UserAuthService } from "../../gen/identity/v1/auth_pb.js";
import { DeviceService } from "../../gen/identity/v1/device_pb.js";
import { DeviceType } from "../../gen/identity/v1/common_pb.js";
import { DocumentType, KycService, KycStatus } from "../../gen/identity/v1/kyc_pb.js";
import { PointsService } from "../../gen/identity/v1/points_pb.js";
import { ProfileService } from "../../gen/identity/v1/profile_pb.js";
import { proveAs, rest, rows, signUpWithEmail } from "../support/account.js";
import { bearer, bearerMetadata, clientFor, grpcJsClient, grpcUnary, signIn, signUp, type SignedUp, type Wire } from "../support/clients.js";
import { codeOf, failure, violatedFields } from "../support/failures.js";
import { mintServiceToken } from "../support/service-token.js";
import { startTestServer, type TestServer } from "../support/server.js";

/** A prefix no other test's addresses start with. */
const RUN = `adm${Math.random().toString(36).slice(2, 8)}`;
let mailCounter = 0;
const runEmail = (label: string) => `${RUN}.${label}.${++mailCounter}@Example.com`;

describe("AdminService end to end", function () {
  let server: TestServer;
  let staff: SignedUp;
  let serviceToken: string;

  before(async () => {
    // Tests sign the same test phone in several times in a row.
    server = await startTestServer({ OTP_RESEND_SECONDS: "0" });
    staff = await signUp(server.url);
    await server.app.stores.models.User.update({ isStaff: true }, { where: { id: staff.userId } });
    serviceToken = await mintServiceToken(server.env, "support-bot");
  });
  after(() => server?.close());

  const asStaff = () => bearer(staff.accessToken);

  describe("permissions", () => {
    it("refuses calls without a token (unauthenticated) and with a user's token (permission_denied)", async () => {
      const admin = clientFor(AdminService, server.url);
      const user = await signUp(server.url);
      expect(await codeOf(admin.listUsers({}))).to.equal(Code.Unauthenticated);
      expect(await codeOf(admin.getUser({ userId: user.userId }))).to.equal(Code.Unauthenticated);
      for (const call of [
        () => admin.listUsers({}, bearer(user.accessToken)),
        () => admin.getUser({ userId: user.userId }, bearer(user.accessToken)),
        () => admin.setUserActive({ userId: user.userId, active: false, reason: "x" }, bearer(user.accessToken)),
        () => admin.revokeUserSessions({ userId: user.userId }, bearer(user.accessToken)),
        () => admin.listAuditLogs({}, bearer(user.accessToken)),
      ]) {
        expect(await codeOf(call())).to.equal(Code.PermissionDenied);
      }
    });

    it("lets a service token call GetUser and nothing else of AdminService", async () => {
      const admin = clientFor(AdminService, server.url, "grpc");
      const user = await signUp(server.url);
      const got = await admin.getUser({ userId: user.userId }, bearer(serviceToken));
      expect(got.user?.id).to.equal(user.userId);
      for (const call of [
        () => admin.listUsers({}, bearer(serviceToken)),
        () => admin.setUserActive({ userId: user.userId, active: false, reason: "x" }, bearer(serviceToken)),
        () => admin.revokeUserSessions({ userId: user.userId }, bearer(serviceToken)),
        () => admin.listAuditLogs({}, bearer(serviceToken)),
      ]) {
        expect(await codeOf(call())).to.equal(Code.PermissionDenied);
      }
      // AdjustPoints stays open to services.
      const adjusted = await clientFor(PointsService, server.url).adjustPoints({ userId: user.userId, delta: 5n, reason: "goodwill", idempotencyKey: `${RUN}-svc` }, bearer(serviceToken));
      expect(adjusted.points).to.equal(5n);
    });

    it("over REST: 401 without a token, 403 for a user, 404 for an unknown user, 400 with field violations", async () => {
      const user = await signUp(server.url);
      expect((await rest(server, "GET", "/api/admin/users")).status).to.equal(401);
      const forbidden = await rest(server, "GET", "/api/admin/users", { token: user.accessToken });
      expect(forbidden.status).to.equal(403);
      expect(forbidden.body.code).to.equal("permission_denied");
      const unknown = await rest(server, "GET", "/api/admin/users/00000000-0000-4000-8000-000000000000", { token: staff.accessToken });
      expect(unknown.status).to.equal(404);
      expect(unknown.body.code).to.equal("not_found");
      const bad = await rest(server, "GET", "/api/admin/users?page_token=bogus&page_size=500", { token: staff.accessToken });
      expect(bad.status).to.equal(400);
      expect(JSON.stringify(bad.body.details)).to.include("page_size");
      expect((await rest(server, "GET", "/api/admin/users?kyc_status=NOPE", { token: staff.accessToken })).status).to.equal(400);
      expect((await rest(server, "GET", `/api/admin/users/${user.userId}`, { token: serviceToken })).status).to.equal(200);
      expect((await rest(server, "GET", "/api/admin/audit-logs", { token: serviceToken })).status).to.equal(403);
    });
  });

  const WIRES: Wire[] = ["connect-json-h1", "grpc"];
  for (const wire of WIRES) {
    describe(`over ${wire}`, () => {
      const admin = () => clientFor(AdminService, server.url, wire);

      it("ListUsers finds users by a case-insensitive prefix of e-mail, username or phone", async () => {
        const a = await signUpWithEmail(server.url, runEmail(`find${wire}`));
        const byEmail = await admin().listUsers({ query: `${RUN}.FIND${wire}`.toUpperCase() }, asStaff());
        expect(byEmail.users.map((u) => u.user!.id)).to.deep.equal([a.userId]);
        expect(byEmail.users[0]).to.deep.include({ kycStatus: KycStatus.NOT_SUBMITTED, points: 0n });
        expect(byEmail.users[0]!.user!.email).to.equal(a.email.toLowerCase());

        const byUsername = await admin().listUsers({ query: a.username.slice(0, -2).toUpperCase() }, asStaff());
        expect(byUsername.users.map((u) => u.user!.id)).to.include(a.userId);
        const byPhone = await admin().listUsers({ query: a.phone }, asStaff());
        expect(byPhone.users.map((u) => u.user!.id)).to.deep.equal([a.userId]);
        const byPhoneNoPlus = await admin().listUsers({ query: a.phone.slice(1) }, asStaff());
        expect(byPhoneNoPlus.users.map((u) => u.user!.id)).to.deep.equal([a.userId]);
        // LIKE's wildcards are taken literally.
        expect((await admin().listUsers({ query: `${RUN}%` }, asStaff())).users).to.deep.equal([]);
        expect((await admin().listUsers({ query: "_" }, asStaff())).users).to.deep.equal([]);
      });

      it("ListUsers filters by is_active and kyc_status", async () => {
        const tag = `filt${wire}`;
        const pending = await signUpWithEmail(server.url, runEmail(tag));
        const plain = await signUpWithEmail(server.url, runEmail(tag));
        const inactive = await signUpWithEmail(server.url, runEmail(tag));
        await clientFor(KycService, server.url).submitKyc(
          { documentType: DocumentType.PASSPORT, documentNumber: "AB1234567", documentFrontUrl: "https://docs.example.com/f.jpg", documentBackUrl: "" },
          bearer(pending.accessToken),
        );
        await admin().setUserActive({ userId: inactive.userId, active: false, reason: "fraud check" }, asStaff());
        const ids = async (req: Parameters<ReturnType<typeof admin>["listUsers"]>[0]) => (await admin().listUsers({ query: `${RUN}.${tag}`, ...req }, asStaff())).users.map((u) => u.user!.id);
        expect(await ids({})).to.have.members([pending.userId, plain.userId, inactive.userId]);
        expect(await ids({ kycStatus: KycStatus.PENDING })).to.deep.equal([pending.userId]);
        expect(await ids({ kycStatus: KycStatus.NOT_SUBMITTED })).to.have.members([plain.userId, inactive.userId]);
        expect(await ids({ isActive: false })).to.deep.equal([inactive.userId]);
        expect(await ids({ isActive: true })).to.have.members([pending.userId, plain.userId]);
        expect(await ids({ isActive: true, kycStatus: KycStatus.APPROVED })).to.deep.equal([]);
      });

      it("ListUsers pages newest first without repeats or skips while users register", async () => {
        const tag = `page${wire}`;
        const first: string[] = [];
        for (let i = 0; i < 5; i++) first.push((await signUpWithEmail(server.url, runEmail(tag))).userId);
        const seen: string[] = [];
        let pageToken = "";
        let pages = 0;
        do {
          const page = await admin().listUsers({ query: `${RUN}.${tag}`, pageSize: 2, pageToken }, asStaff());
          seen.push(...page.users.map((u) => u.user!.id));
          pageToken = page.nextPageToken;
          // Registrations between pages come before the first page: never inside a later one.
          if (pages++ === 0) await signUpWithEmail(server.url, runEmail(tag));
        } while (pageToken);
        expect(seen).to.deep.equal([...first].reverse());
        expect(pages).to.equal(3);
      });

      it("ListUsers refuses a bad or foreign page token with a field violation", async () => {
        const bogus = await failure(admin().listUsers({ pageToken: "not-a-token" }, asStaff()));
        expect(bogus.code).to.equal(Code.InvalidArgument);
        expect(violatedFields(bogus)).to.deep.equal(["page_token"]);
        const tag = `tok${wire}`;
        await signUpWithEmail(server.url, runEmail(tag));
        await signUpWithEmail(server.url, runEmail(tag));
        const { nextPageToken } = await admin().listUsers({ query: `${RUN}.${tag}`, pageSize: 1 }, asStaff());
        expect(nextPageToken).to.not.equal("");
        const foreign = await failure(admin().listUsers({ query: "someone.else", pageSize: 1, pageToken: nextPageToken }, asStaff()));
        expect(violatedFields(foreign)).to.deep.equal(["page_token"]);
        const tooLong = await failure(admin().listUsers({ query: "x".repeat(101) }, asStaff()));
        expect(violatedFields(tooLong)).to.deep.equal(["query"]);
      });

      it("GetUser returns profile, KYC, wallet, devices, sessions and pending deletion", async () => {
        const user = await signUpWithEmail(server.url, runEmail(`get${wire}`));
        const auth = bearer(user.accessToken);
        await clientFor(ProfileService, server.url).updateProfile({ fullName: "Ada Lovelace" }, auth);
        await clientFor(KycService, server.url).submitKyc(
          { documentType: DocumentType.PASSPORT, documentNumber: "CD7654321", documentFrontUrl: "https://docs.example.com/f.jpg", documentBackUrl: "" },
          auth,
        );
        await clientFor(DeviceService, server.url).registerDevice({ deviceId: "phone-1", fcmToken: `fcm-${RUN}-${wire}`, deviceType: DeviceType.ANDROID, deviceName: "Pixel" }, auth);
        await clientFor(PointsService, server.url).adjustPoints({ userId: user.userId, delta: 250n, reason: "welcome", idempotencyKey: `${RUN}-get-${wire}` }, asStaff());
        await signIn(server.url, user.phone);

        const got = await admin().getUser({ userId: user.userId.toUpperCase() }, asStaff());
        expect(got.user).to.deep.include({ id: user.userId, email: user.email.toLowerCase(), isActive: true });
        expect(got.profile?.fullName).to.equal("Ada Lovelace");
        expect(got.kyc).to.deep.include({ status: KycStatus.PENDING, documentNumber: "CD7654321", documentFrontUrl: "https://docs.example.com/f.jpg" });
        expect(got.wallet).to.deep.include({ points: 250n, totalPoints: 250n, balance: "2.50" });
        expect(got.devices.map((d) => d.deviceId)).to.deep.equal(["phone-1"]);
        expect(got.liveSessionCount).to.equal(2);
        expect(got.sessions).to.have.length(2);
        expect(got.deletionScheduledFor).to.equal(undefined);
        // The staff adjustment's audit row names the staff user and the reason.
        const [adjusted] = await rows<{ actor_id: string; new_values: Record<string, unknown> }>(server, "SELECT actor_id, new_values FROM user_audit_logs WHERE user_id = :id AND action = 'points.adjusted'", { id: user.userId });
        expect(adjusted).to.deep.include({ actor_id: staff.userId });
        expect(adjusted!.new_values.reason).to.equal("welcome");

        const fresh = await signUp(server.url);
        const empty = await admin().getUser({ userId: fresh.userId }, asStaff());
        expect(empty.kyc?.status).to.equal(KycStatus.NOT_SUBMITTED);
        expect(empty.wallet).to.deep.include({ points: 0n, balance: "0.00" });

        expect(await codeOf(admin().getUser({ userId: "00000000-0000-4000-8000-000000000000" }, asStaff()))).to.equal(Code.NotFound);
        const bad = await failure(admin().getUser({ userId: "nope" }, asStaff()));
        expect(bad.code).to.equal(Code.InvalidArgument);
        expect(violatedFields(bad)).to.deep.equal(["user_id"]);
      });

      it("SetUserActive: a reason is required; deactivation ends every session at once; audited with the actor", async () => {
        const user = await signUp(server.url);
        const second = await signIn(server.url, user.phone);
        const noReason = await failure(admin().setUserActive({ userId: user.userId, active: false }, asStaff()));
        expect(noReason.code).to.equal(Code.InvalidArgument);
        expect(violatedFields(noReason)).to.deep.equal(["reason"]);

        const r = await admin().setUserActive({ userId: user.userId, active: false, reason: "chargeback fraud" }, asStaff());
        expect(r.user?.isActive).to.equal(false);
        expect(r.revokedSessions).to.equal(2);
        const auth = clientFor(UserAuthService, server.url);
        expect(await codeOf(auth.getMe({}, bearer(user.accessToken)))).to.equal(Code.Unauthenticated);
        expect(await codeOf(auth.getMe({}, bearer(second.accessToken)))).to.equal(Code.Unauthenticated);
        expect(await codeOf(signIn(server.url, user.phone))).to.equal(Code.PermissionDenied);
        // Again: nothing to change, nothing written.
        expect((await admin().setUserActive({ userId: user.userId, active: false, reason: "again" }, asStaff())).revokedSessions).to.equal(0);

        const back = await admin().setUserActive({ userId: user.userId, active: true, reason: "cleared" }, asStaff());
        expect(back.user?.isActive).to.equal(true);
        await signIn(server.url, user.phone);

        const audit = await rows<{ action: string; actor_id: string; new_values: Record<string, unknown> }>(
          server,
          "SELECT action, actor_id, new_values FROM user_audit_logs WHERE user_id = :id AND action IN ('user.deactivated', 'user.reactivated') ORDER BY id",
          { id: user.userId },
        );
        expect(audit.map((a) => [a.action, a.actor_id, a.new_values.reason])).to.deep.equal([
          ["user.deactivated", staff.userId, "chargeback fraud"],
          ["user.reactivated", staff.userId, "cleared"],
        ]);
        expect(audit[0]!.new_values.sessions_ended).to.equal(2);
      });

      it("SetUserActive: deactivating an account whose deletion is pending keeps a sign-in during the grace from restoring it", async () => {
        const user = await signUp(server.url);
        const account = clientFor(AccountService, server.url, wire);
        const verificationToken = await proveAs(server.url, user.accessToken, user.phone, OtpPurpose.DELETE_ACCOUNT);
        const { deletionScheduledFor } = await account.deleteAccount({ verificationToken }, bearer(user.accessToken));
        const r = await admin().setUserActive({ userId: user.userId, active: false, reason: "abuse during deletion grace" }, asStaff());
        expect(r.user?.isActive).to.equal(false);
        expect(await codeOf(signIn(server.url, user.phone))).to.equal(Code.PermissionDenied);
        // The erasure the user asked for stays due.
        expect((await admin().getUser({ userId: user.userId }, asStaff())).deletionScheduledFor).to.deep.equal(deletionScheduledFor);
        const audit = await rows<{ actor_id: string; old_values: Record<string, unknown> }>(server, "SELECT actor_id, old_values FROM user_audit_logs WHERE user_id = :id AND action = 'user.deactivated'", { id: user.userId });
        expect(audit.map((a) => [a.actor_id, a.old_values.is_active])).to.deep.equal([[staff.userId, false]]);
      });

      it("SetUserActive: staff cannot deactivate themselves; unknown users are not_found", async () => {
        expect(await codeOf(admin().setUserActive({ userId: staff.userId, active: false, reason: "oops" }, asStaff()))).to.equal(Code.FailedPrecondition);
        expect(await codeOf(admin().setUserActive({ userId: "00000000-0000-4000-8000-000000000000", active: false, reason: "x" }, asStaff()))).to.equal(Code.NotFound);
        // The staff account is untouched.
        expect((await clientFor(UserAuthService, server.url).getMe({}, asStaff())).user?.isActive).to.equal(true);
      });

      it("RevokeUserSessions ends every session; the tokens are refused; audited with the actor and reason", async () => {
        const user = await signUp(server.url);
        await signIn(server.url, user.phone);
        const { revokedCount } = await admin().revokeUserSessions({ userId: user.userId, reason: "lost phone" }, asStaff());
        expect(revokedCount).to.equal(2);
        expect(await codeOf(clientFor(UserAuthService, server.url).getMe({}, bearer(user.accessToken)))).to.equal(Code.Unauthenticated);
        // The account stays active: the user can sign in again.
        await signIn(server.url, user.phone);
        const [row] = await rows<{ actor_id: string; new_values: Record<string, unknown> }>(
          server,
          "SELECT actor_id, new_values FROM user_audit_logs WHERE user_id = :id AND action = 'sessions.revoked_by_staff'",
          { id: user.userId },
        );
        expect(row).to.deep.include({ actor_id: staff.userId });
        expect(row!.new_values).to.deep.equal({ revoked_count: 2, reason: "lost phone" });
        expect(await codeOf(admin().revokeUserSessions({ userId: "00000000-0000-4000-8000-000000000000" }, asStaff()))).to.equal(Code.NotFound);
      });

      it("ListAuditLogs filters by user, action, entity type and time, newest first, in pages", async () => {
        const user = await signUp(server.url);
        await signIn(server.url, user.phone);
        await signIn(server.url, user.phone);
        await admin().revokeUserSessions({ userId: user.userId, reason: "check" }, asStaff());
        const all = await admin().listAuditLogs({ userId: user.userId, pageSize: 100 }, asStaff());
        const ids = all.entries.map((e) => BigInt(e.id));
        expect(ids).to.deep.equal([...ids].sort((a, b) => (a > b ? -1 : 1)));
        expect(all.entries[0]).to.deep.include({ action: "sessions.revoked_by_staff", actorId: staff.userId, userId: user.userId, entityType: "session" });
        expect(all.entries[0]!.newValues).to.deep.equal({ revoked_count: 3, reason: "check" });

        const logins = await admin().listAuditLogs({ userId: user.userId, action: "user.login" }, asStaff());
        expect(logins.entries).to.have.length(2);
        const sessionRows = await admin().listAuditLogs({ userId: user.userId, entityType: "session", pageSize: 100 }, asStaff());
        expect(sessionRows.entries.every((e) => e.entityType === "session")).to.equal(true);

        // Pages of 1 walk the same rows.
        const paged: string[] = [];
        let pageToken = "";
        do {
          const page = await admin().listAuditLogs({ userId: user.userId, pageSize: 1, pageToken }, asStaff());
          paged.push(...page.entries.map((e) => e.id));
          pageToken = page.nextPageToken;
        } while (pageToken);
        expect(paged).to.deep.equal(all.entries.map((e) => e.id));

        const newest = all.entries[0]!.createdAt!;
        const since = await admin().listAuditLogs({ userId: user.userId, since: newest, pageSize: 100 }, asStaff());
        expect(since.entries.map((e) => e.id)).to.include(all.entries[0]!.id);
        const until = await admin().listAuditLogs({ userId: user.userId, until: newest, pageSize: 100 }, asStaff());
        expect(until.entries.map((e) => e.id)).to.not.include(all.entries[0]!.id);

        const bad = await failure(admin().listAuditLogs({ userId: "x", since: newest, until: newest, pageToken: "zz" }, asStaff()));
        expect(bad.code).to.equal(Code.InvalidArgument);
        expect(violatedFields(bad)).to.have.members(["user_id", "until"]);
        const badToken = await failure(admin().listAuditLogs({ pageToken: "zz" }, asStaff()));
        expect(violatedFields(badToken)).to.deep.equal(["page_token"]);
      });
    });
  }

  describe("over REST", () => {
    it("serves every method on its google.api.http path", async () => {
      const user = await signUpWithEmail(server.url, runEmail("rest"));
      const token = staff.accessToken;
      const found = await rest(server, "GET", `/api/admin/users?query=${encodeURIComponent(`${RUN}.REST`)}&is_active=true&kyc_status=KYC_STATUS_NOT_SUBMITTED`, { token });
      expect(found.status).to.equal(200);
      const users = found.body.users as Array<{ user: { id: string }; kyc_status: string; points: string }>;
      expect(users.map((u) => u.user.id)).to.deep.equal([user.userId]);
      expect(users[0]).to.deep.include({ kyc_status: "KYC_STATUS_NOT_SUBMITTED" });

      const got = await rest(server, "GET", `/api/admin/users/${user.userId}`, { token });
      expect(got.status).to.equal(200);
      expect(got.body).to.have.property("live_session_count", 1);

      const noReason = await rest(server, "POST", `/api/admin/users/${user.userId}/active`, { token, body: { active: false } });
      expect(noReason.status).to.equal(400);
      expect(JSON.stringify(noReason.body.details)).to.include("reason");
      const off = await rest(server, "POST", `/api/admin/users/${user.userId}/active`, { token, body: { active: false, reason: "spam" } });
      expect(off.status).to.equal(200);
      expect(off.body).to.deep.include({ revoked_sessions: 1 });
      const self = await rest(server, "POST", `/api/admin/users/${staff.userId}/active`, { token, body: { active: false, reason: "x" } });
      expect(self.status).to.equal(400);
      expect(self.body.code).to.equal("failed_precondition");
      const on = await rest(server, "POST", `/api/admin/users/${user.userId}/active`, { token, body: { active: true } });
      expect((on.body.user as { is_active: boolean }).is_active).to.equal(true);

      const revoked = await rest(server, "POST", `/api/admin/users/${user.userId}/sessions/revoke`, { token, body: {} });
      expect(revoked.status).to.equal(200);
      expect(revoked.body).to.deep.equal({ revoked_count: 0 });

      const since = new Date(Date.now() - 3600_000).toISOString();
      const logs = await rest(server, "GET", `/api/admin/audit-logs?user_id=${user.userId}&action=user.deactivated&since=${since}`, { token });
      expect(logs.status).to.equal(200);
      const entries = logs.body.entries as Array<{ action: string; actor_id: string; new_values: { reason: string } }>;
      expect(entries.map((e) => [e.action, e.actor_id, e.new_values.reason])).to.deep.equal([["user.deactivated", staff.userId, "spam"]]);
      expect((await rest(server, "GET", "/api/admin/audit-logs?since=yesterday", { token })).status).to.equal(400);
    });
  });

  describe("over @grpc/grpc-js", () => {
    it("GetUser answers a service token; ListUsers refuses it with PERMISSION_DENIED", async () => {
      const client = grpcJsClient(server.port);
      try {
        const user = await signUp(server.url);
        const got = await grpcUnary(client, "/identity.v1.AdminService/GetUser", GetUserRequestSchema, GetUserResponseSchema, { $typeName: "identity.v1.GetUserRequest", userId: user.userId }, bearerMetadata(serviceToken));
        expect(got.user?.id).to.equal(user.userId);
        const err = (await grpcUnary(client, "/identity.v1.AdminService/ListUsers", ListUsersRequestSchema, ListUsersResponseSchema, { $typeName: "identity.v1.ListUsersRequest", query: "", kycStatus: 0, pageSize: 0, pageToken: "" }, bearerMetadata(serviceToken)).catch((e: unknown) => e)) as grpc.ServiceError;
        expect(err.code).to.equal(grpc.status.PERMISSION_DENIED);
        const listed = await grpcUnary(client, "/identity.v1.AdminService/ListUsers", ListUsersRequestSchema, ListUsersResponseSchema, { $typeName: "identity.v1.ListUsersRequest", query: user.phone, kycStatus: 0, pageSize: 0, pageToken: "" }, bearerMetadata(staff.accessToken));
        expect(listed.users.map((u) => u.user!.id)).to.deep.equal([user.userId]);
      } finally {
        client.close();
      }
    });
  });
});
