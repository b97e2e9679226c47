// The service as a process, the way `npm start` runs it: configuration errors, reflection
// with buf curl against the full app, SIGTERM letting an in-flight call finish, and the calls
// still running at the end of the grace abandoned (their writes cancelled) and answered.
import { execFile } from "node:child_process";
import { connect } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect } from "chai";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import pg from "pg";
import { QueryTypes } from "sequelize";
import { KycService } from "../../gen/identity/v1/kyc_pb.js";
import { ProfileService, UpdateProfileRequestSchema, UpdateProfileResponseSchema } from "../../gen/identity/v1/profile_pb.js";
import { bearer, bearerMetadata, clientFor, grpcJsClient, grpcUnary, signUp } from "../support/clients.js";
import { codeOf } from "../support/failures.js";
import { startMain, waitFor } from "../support/main-process.js";
import { startTestServer, testServerEnv, type TestServer } from "../support/server.js";

const run = promisify(execFile);
const buf = join(process.cwd(), "node_modules/.bin/buf");
const tsx = join(process.cwd(), "node_modules/.bin/tsx");

describe("the service process", function () {
  this.timeout(60000);

  it("stops at start with one line naming a bad variable", async () => {
    const { output, exited } = startMain({ PORT: "eighty", NODE_ENV: "development" });
    expect(await exited).to.equal(2);
    expect(output().trim()).to.equal('configuration error: PORT: expected a whole number, got "eighty"');
  });

  it("refuses production with the development log sink", async () => {
    const { output, exited } = startMain({ NODE_ENV: "production", SERVER_SECRET: "x".repeat(40), JWT_KEYS_DIR: "/nonexistent" });
    expect(await exited).to.equal(2);
    expect(output()).to.match(/^configuration error: SMTP_URL: required in production/);
  });

  it("finishes an in-flight call after SIGTERM, then exits 0", async () => {
    const env = testServerEnv({ LOG_LEVEL: "info", PORT: "0" });
    const { child, output, exited } = startMain(env);
    await waitFor(() => /"identity service started"/.test(output()), 30000);
    const url = /"url":"(http:\/\/[^"]+)"/.exec(output())![1]!;
    const port = Number(new URL(url).port);

    // A request whose body is still arriving when the signal comes.
    const body = JSON.stringify({ identifier: "+15550001234", purpose: "OTP_PURPOSE_LOGIN" });
    const socket = connect(port, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    let response = "";
    socket.on("data", (d: Buffer) => (response += d.toString()));
    socket.write(`POST /api/auth/otp/request HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body.slice(0, 10)}`);
    await new Promise((r) => setTimeout(r, 200));
    child.kill("SIGTERM");
    await waitFor(() => /"shutting down"/.test(output()), 5000);
    // New connections are refused while the in-flight call drains.
    const refused = await new Promise<boolean>((resolve) => {
      const s = connect(port, "127.0.0.1");
      s.once("error", () => resolve(true));
      s.once("connect", () => {
        s.destroy();
        resolve(false);
      });
    });
    expect(refused).to.equal(true);
    socket.write(body.slice(10));
    await waitFor(() => response.includes("A verification code has been sent"), 5000);
    expect(response).to.match(/^HTTP\/1\.1 200/);
    expect(await exited).to.equal(0);
    socket.destroy();
  });

  it("at the grace, cancels the database work of calls still in flight, answers them unavailable (gRPC and Connect) and exits within grace + 2 s", async () => {
    const graceSeconds = 2;
    const env = testServerEnv({ LOG_LEVEL: "info", PORT: "0", SHUTDOWN_GRACE_SECONDS: String(graceSeconds) });
    const { child, output, exited } = startMain(env);
    await waitFor(() => /"identity service started"/.test(output()), 30000);
    const url = /"url":"(http:\/\/[^"]+)"/.exec(output())![1]!;
    const [grpcUser, connectUser] = [await signUp(url), await signUp(url)];
    const db = new pg.Client(env.DATABASE_URL);
    await db.connect();
    const grpcClient = grpcJsClient(Number(new URL(url).port));
    try {
      // The service's UpdateProfile writes the profile, then waits to insert its outbox row.
      await db.query("BEGIN");
      await db.query("LOCK TABLE outbox IN SHARE MODE");
      const change = { fullName: "Changed At Shutdown" };
      const viaGrpc = grpcUnary(grpcClient, "/identity.v1.ProfileService/UpdateProfile", UpdateProfileRequestSchema, UpdateProfileResponseSchema, create(UpdateProfileRequestSchema, change), bearerMetadata(grpcUser.accessToken)).then(
        () => "answered",
        (e: grpc.ServiceError) => [e.code, e.details],
      );
      const viaConnect = clientFor(ProfileService, url, "connect-json-h1").updateProfile(change, bearer(connectUser.accessToken)).then(
        () => "answered",
        (e: unknown) => [ConnectError.from(e).code, ConnectError.from(e).rawMessage],
      );
      const waiting = async () => (await db.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rowCount ?? 0;
      for (let i = 0; (await waiting()) < 2; i++) {
        if (i > 400) throw new Error("the writes never started waiting");
        await new Promise((r) => setTimeout(r, 25));
      }
      const signalled = Date.now();
      child.kill("SIGTERM");
      expect(await viaGrpc).to.deep.equal([grpc.status.UNAVAILABLE, "Server is shutting down"]);
      expect(await viaConnect).to.deep.equal([Code.Unavailable, "Server is shutting down"]);
      // Exits while this test still holds the lock: the writes were cancelled, not waited for.
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r("still running"), 20000))]);
      const seconds = (Date.now() - signalled) / 1000;
      expect(code).to.equal(0);
      expect(seconds).to.be.below(graceSeconds + 2);
      expect(await waiting()).to.equal(0);
    } finally {
      await db.query("ROLLBACK");
      grpcClient.close();
      child.kill("SIGKILL");
    }
    const { rows } = await db.query<{ full_name: string | null }>("SELECT full_name FROM user_profiles WHERE user_id = ANY($1::uuid[])", [[grpcUser.userId, connectUser.userId]]);
    await db.end();
    expect(rows.map((r) => r.full_name)).to.not.include("Changed At Shutdown");
  });

  describe("operator commands", () => {
    let server: TestServer;
    before(async () => (server = await startTestServer()));
    after(async () => server?.close());

    it("npm run staff grants and revokes staff, effective on the next call", async () => {
      const user = await signUp(server.url);
      const kyc = clientFor(KycService, server.url);
      expect(await codeOf(kyc.listKycSubmissions({}, bearer(user.accessToken)))).to.equal(Code.PermissionDenied);
      const granted = await run(tsx, ["src/cli/staff.ts", "grant", user.username.toUpperCase()], { env: { ...process.env, ...server.env } });
      expect(JSON.parse(granted.stdout)).to.deep.equal({ id: user.userId, username: user.username, is_staff: true });
      await kyc.listKycSubmissions({}, bearer(user.accessToken));
      await run(tsx, ["src/cli/staff.ts", "revoke", user.phone], { env: { ...process.env, ...server.env } });
      expect(await codeOf(kyc.listKycSubmissions({}, bearer(user.accessToken)))).to.equal(Code.PermissionDenied);
      const [row] = await server.app.stores.sequelize.query<{ actions: string[] }>(
        "SELECT array_agg(action ORDER BY id) AS actions FROM user_audit_logs WHERE user_id = :id AND action LIKE 'user.staff%'",
        { replacements: { id: user.userId }, type: QueryTypes.SELECT },
      );
      expect(row!.actions).to.deep.equal(["user.staff_granted", "user.staff_revoked"]);
      const unknown = await run(tsx, ["src/cli/staff.ts", "grant", "nobody_here"], { env: { ...process.env, ...server.env } }).catch((e: { code: number; stderr: string }) => e);
      expect(unknown).to.include({ code: 1 });
      expect((unknown as { stderr: string }).stderr).to.match(/^staff: No user "nobody_here"$/m);
    });
  });

  describe("reflection against the full app (buf curl)", () => {
    let server: TestServer;
    before(async () => (server = await startTestServer()));
    after(async () => server?.close());

    it("lists all six services", async () => {
      const { stdout } = await run(buf, ["curl", "--http2-prior-knowledge", "--reflect", "--list-services", server.url]);
      expect(stdout.split("\n").filter(Boolean)).to.include.members([
        "identity.v1.UserAuthService",
        "identity.v1.ProfileService",
        "identity.v1.KycService",
        "identity.v1.DeviceService",
        "identity.v1.PointsService",
        "identity.v1.AccountService",
      ]);
    });

    it("lists every method and calls them through reflection over gRPC and Connect", async () => {
      const { stdout } = await run(buf, ["curl", "--http2-prior-knowledge", "--reflect", "--list-methods", server.url]);
      expect(stdout).to.include("identity.v1.UserAuthService/GetMe");
      const user = await signUp(server.url);
      for (const protocol of ["grpc", "connect", "grpcweb"]) {
        const me = await run(buf, ["curl", "--http2-prior-knowledge", "--protocol", protocol, "-H", `authorization: Bearer ${user.accessToken}`, `${server.url}/identity.v1.UserAuthService/GetMe`]);
        expect(JSON.parse(me.stdout).user.id).to.equal(user.userId);
      }
      const failed = await run(buf, ["curl", "--http2-prior-knowledge", "--protocol", "grpc", `${server.url}/identity.v1.UserAuthService/GetMe`]).catch((e: { stderr: string }) => e);
      expect((failed as { stderr: string }).stderr).to.match(/unauthenticated/);
    });
  });
});
