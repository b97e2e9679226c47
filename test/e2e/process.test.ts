// The service as a process, the way `npm start` runs it: configuration errors, reflection
// with buf curl against the full app, and SIGTERM letting an in-flight call finish.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect } from "chai";
import { Code } from "@connectrpc/connect";
import { QueryTypes } from "sequelize";
import { KycService } from "../../gen/identity/v1/kyc_pb.js";
import { bearer, clientFor, signUp } from "../support/clients.js";
import { codeOf } from "../support/failures.js";
import { startTestServer, testServerEnv, type TestServer } from "../support/server.js";

const run = promisify(execFile);
const buf = join(process.cwd(), "node_modules/.bin/buf");
const tsx = join(process.cwd(), "node_modules/.bin/tsx");

function startMain(env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(tsx, ["src/main.ts"], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function waitFor(check: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 50));
  }
}

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
