// ProfileService end to end: the real server on a free port, real clients (Connect JSON over
// HTTP/1.1, gRPC through connect-node, @grpc/grpc-js, REST), real PostgreSQL and Redis;
// users signed up through the OTP flow.
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { QueryTypes } from "sequelize";
import { KycStatus } from "../../gen/identity/v1/kyc_pb.js";
import {
  GetProfileRequestSchema,
  GetProfileResponseSchema,
  GetUsageStatsRequestSchema,
  GetUsageStatsResponseSchema,
  ProfileService,
  UpdateProfileRequestSchema,
  UpdateProfileResponseSchema,
} from "../../gen/identity/v1/profile_pb.js";
import { failure, violatedFields } from "../support/failures.js";
import { bearer, bearerMetadata, clientFor, grpcJsClient, grpcUnary, signIn, signUp, type Wire } from "../support/clients.js";
import { startTestServer, type TestServer } from "../support/server.js";

const today = () => new Date().toISOString().slice(0, 10);

describe("ProfileService end to end", function () {
  let server: TestServer;

  before(async () => {
    server = await startTestServer();
  });
  after(() => server?.close());

  const WIRES: Wire[] = ["connect-json-h1", "grpc"];
  for (const wire of WIRES) {
    describe(`over ${wire}`, () => {
      const profiles = () => clientFor(ProfileService, server.url, wire);

      it("GetProfile returns the profile Register created; UpdateProfile changes only the fields present", async () => {
        const user = await signUp(server.url, { fullName: "Ada Lovelace" });
        const auth = bearer(user.accessToken);
        const { profile } = await profiles().getProfile({}, auth);
        expect(profile).to.deep.include({ fullName: "Ada Lovelace", dateOfBirth: "", address: "", avatarUrl: "", isProfileComplete: false });

        const partial = await profiles().updateProfile({ dateOfBirth: "1990-12-10", address: "12 St James's Square" }, auth);
        expect(partial.profile).to.deep.include({ fullName: "Ada Lovelace", dateOfBirth: "1990-12-10", address: "12 St James's Square", isProfileComplete: true });
        expect(partial.profile!.updatedAt).to.not.equal(undefined);

        const avatar = await profiles().updateProfile({ avatarUrl: "https://cdn.example.com/ada.png" }, auth);
        expect(avatar.profile).to.deep.include({ fullName: "Ada Lovelace", avatarUrl: "https://cdn.example.com/ada.png", isProfileComplete: true });

        const cleared = await profiles().updateProfile({ address: "" }, auth);
        expect(cleared.profile).to.deep.include({ address: "", avatarUrl: "https://cdn.example.com/ada.png", isProfileComplete: false });
        expect((await profiles().getProfile({}, auth)).profile).to.deep.equal(cleared.profile);
      });

      it("UpdateProfile names every bad field and changes nothing", async () => {
        const user = await signUp(server.url, { fullName: "Grace Hopper" });
        const auth = bearer(user.accessToken);
        const err = await failure(profiles().updateProfile({ fullName: "G", dateOfBirth: today(), address: "x".repeat(256), avatarUrl: "http://cdn.example.com/g.png" }, auth));
        expect(err.code).to.equal(Code.InvalidArgument);
        expect(violatedFields(err)).to.have.members(["full_name", "date_of_birth", "address", "avatar_url"]);
        expect((await profiles().getProfile({}, auth)).profile).to.deep.include({ fullName: "Grace Hopper", dateOfBirth: "", address: "", avatarUrl: "" });
      });

      it("GetUsageStats counts the caller's logins, sessions and today's activity", async () => {
        const user = await signUp(server.url, { fullName: "Alan Turing" });
        await signIn(server.url, user.phone, wire);
        const auth = bearer(user.accessToken);
        await profiles().updateProfile({ dateOfBirth: "1992-06-23" }, auth);
        const stats = await profiles().getUsageStats({}, auth);
        expect(stats).to.deep.include({
          totalLogins: 2,
          activeSessions: 2,
          activeDevices: 0,
          accountAgeDays: 0,
          profileCompleteness: 50,
          kycStatus: KycStatus.NOT_SUBMITTED,
          pointsEarned: 0n,
          pointsSpent: 0n,
        });
        expect(stats.lastLogin).to.not.equal(undefined);
        expect(stats.lastActivity).to.not.equal(undefined);
        expect(stats.dailyActivity).to.have.length(30);
        // Register, Login and the update at least; whatever else the server audited about the user today.
        const [{ n: events }] = await server.app.stores.sequelize.query<{ n: number }>("SELECT count(*)::int AS n FROM user_audit_logs WHERE user_id = $1", {
          bind: [user.userId],
          type: QueryTypes.SELECT,
        });
        expect(events).to.be.at.least(3);
        expect(stats.dailyActivity.at(-1)).to.deep.include({ date: today(), logins: 2, events });
        expect(stats.dailyActivity.slice(0, -1).every((d) => d.events === 0)).to.equal(true);
      });

      it("answers unauthenticated without an access token", async () => {
        for (const call of [() => profiles().getProfile({}), () => profiles().updateProfile({ fullName: "Nobody" }), () => profiles().getUsageStats({})]) {
          expect((await failure(call())).code).to.equal(Code.Unauthenticated);
        }
      });
    });
  }

  describe("over @grpc/grpc-js", () => {
    let client: grpc.Client;
    before(() => {
      client = grpcJsClient(server.port);
    });
    after(() => client.close());

    it("serves GetProfile, UpdateProfile and GetUsageStats with error codes and details", async () => {
      const user = await signUp(server.url, { fullName: "Hedy Lamarr" });
      const md = () => bearerMetadata(user.accessToken);
      const path = (method: string) => `/identity.v1.ProfileService/${method}`;

      const updated = await grpcUnary(client, path("UpdateProfile"), UpdateProfileRequestSchema, UpdateProfileResponseSchema, { $typeName: "identity.v1.UpdateProfileRequest", avatarUrl: "https://cdn.example.com/h.png" }, md());
      expect(updated.profile).to.deep.include({ fullName: "Hedy Lamarr", avatarUrl: "https://cdn.example.com/h.png" });
      const got = await grpcUnary(client, path("GetProfile"), GetProfileRequestSchema, GetProfileResponseSchema, { $typeName: "identity.v1.GetProfileRequest" }, md());
      expect(got.profile).to.deep.include({ fullName: "Hedy Lamarr", avatarUrl: "https://cdn.example.com/h.png", isProfileComplete: false });
      const stats = await grpcUnary(client, path("GetUsageStats"), GetUsageStatsRequestSchema, GetUsageStatsResponseSchema, { $typeName: "identity.v1.GetUsageStatsRequest" }, md());
      expect(stats).to.deep.include({ totalLogins: 1, activeSessions: 1, profileCompleteness: 50 });

      const err = (await grpcUnary(client, path("UpdateProfile"), UpdateProfileRequestSchema, UpdateProfileResponseSchema, { $typeName: "identity.v1.UpdateProfileRequest", avatarUrl: "ftp://x" }, md()).catch((e: unknown) => e)) as grpc.ServiceError;
      expect(err.code).to.equal(grpc.status.INVALID_ARGUMENT);
      expect(err.details).to.match(/avatar_url/);
    });
  });

  describe("over REST", () => {
    it("GET and PUT /api/users/profile with snake_case bodies", async () => {
      const user = await signUp(server.url, { fullName: "Katherine Johnson" });
      const headers = { authorization: `Bearer ${user.accessToken}`, "content-type": "application/json" };
      const put = await fetch(`${server.url}/api/users/profile`, { method: "PUT", headers, body: JSON.stringify({ date_of_birth: "1990-08-26", address: "Hampton, VA" }) });
      expect(put.status).to.equal(200);
      expect(await put.json()).to.deep.include({ full_name: "Katherine Johnson", date_of_birth: "1990-08-26", address: "Hampton, VA", is_profile_complete: true });
      const get = await fetch(`${server.url}/api/users/profile`, { headers });
      expect(await get.json()).to.deep.include({ full_name: "Katherine Johnson", is_profile_complete: true });
      const bad = await fetch(`${server.url}/api/users/profile`, { method: "PUT", headers, body: JSON.stringify({ full_name: "K4" }) });
      expect(bad.status).to.equal(400);
      expect(await bad.json()).to.have.property("code", "invalid_argument");
    });
  });
});
