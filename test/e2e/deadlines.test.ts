// Deadlines against the full app: a call whose grpc-timeout or Connect-Timeout-Ms has expired
// answers deadline_exceeded without its payload, and its database work is abandoned (the slow
// write is cancelled while it waits and rolled back).
import http2 from "node:http2";
import { setTimeout as sleep } from "node:timers/promises";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import pg from "pg";
import { GetMeRequestSchema } from "../../gen/identity/v1/auth_pb.js";
import { ProfileService, UpdateProfileRequestSchema } from "../../gen/identity/v1/profile_pb.js";
import { bearer, bearerMetadata, clientFor, grpcJsClient, signUp, type SignedUp } from "../support/clients.js";
import { startTestServer, type TestServer } from "../support/server.js";

describe("deadlines on the wire (full app)", function () {
  this.timeout(60000);
  let server: TestServer;
  let db: pg.Client;
  let user: SignedUp;

  before(async () => {
    server = await startTestServer();
    db = new pg.Client(server.env.DATABASE_URL);
    await db.connect();
    user = await signUp(server.url);
  });
  after(async () => {
    await db?.end();
    await server?.close();
  });

  /** A raw gRPC call over HTTP/2 (no client-side deadline): its grpc-status and the bytes of its response. */
  function rawGrpc(path: string, message: Uint8Array, grpcTimeout: string): Promise<{ status: string | undefined; bytes: number; rstCode: number | undefined }> {
    const session = http2.connect(server.url);
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", "grpc-timeout": grpcTimeout, authorization: `Bearer ${user.accessToken}` });
    let bytes = 0;
    let status: string | undefined;
    stream.on("data", (d: Buffer) => (bytes += d.length));
    stream.on("response", (h) => (status = h["grpc-status"] === undefined ? undefined : String(h["grpc-status"])));
    stream.on("trailers", (t) => (status = String(t["grpc-status"])));
    stream.end(Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), message]));
    return new Promise((resolve) => stream.on("close", () => (session.close(), resolve({ status, bytes, rstCode: stream.rstCode }))));
  }

  const profileName = async () => (await db.query<{ full_name: string | null }>("SELECT full_name FROM user_profiles WHERE user_id = $1", [user.userId])).rows[0]?.full_name ?? null;
  const waitingForLock = async () => (await db.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rowCount ?? 0;

  /**
   * Runs `call` while the outbox is locked (UpdateProfile writes the profile, then waits there);
   * releases the lock once `call` settled, or after 10 s (then `waitingAfterAnswer` is -1).
   */
  async function withOutboxLocked<T>(call: () => Promise<T>): Promise<{ result: T; waitingAfterAnswer: number }> {
    await db.query("BEGIN");
    await db.query("LOCK TABLE outbox IN SHARE MODE");
    let locked = true;
    try {
      const settled = call();
      if ((await Promise.race([settled.then(() => "settled"), sleep(10000, "late")])) === "late") {
        await db.query("ROLLBACK");
        locked = false;
        return { result: await settled, waitingAfterAnswer: -1 };
      }
      const result = await settled;
      // Give a cancelled statement a moment to leave the lock queue (it has no reason to stay).
      for (let i = 0; i < 40 && (await waitingForLock()) > 0; i++) await sleep(25);
      return { result, waitingAfterAnswer: await waitingForLock() };
    } finally {
      if (locked) await db.query("ROLLBACK");
    }
  }

  it("answers gRPC calls with grpc-timeout 1n deadline_exceeded, without the payload", async () => {
    for (let i = 0; i < 5; i++) {
      const call = await rawGrpc("/identity.v1.UserAuthService/GetMe", toBinary(GetMeRequestSchema, create(GetMeRequestSchema)), "1n");
      expect(call).to.deep.equal({ status: String(grpc.status.DEADLINE_EXCEEDED), bytes: 0, rstCode: http2.constants.NGHTTP2_NO_ERROR });
    }
  });

  it("makes no AbortController for fast-path calls that start no transaction (GetMe), deadline or not", async () => {
    const client = grpcJsClient(server.port);
    const Original = globalThis.AbortController;
    let made = 0;
    globalThis.AbortController = class extends Original {
      constructor() {
        super();
        made++;
      }
    };
    try {
      for (let i = 0; i < 20; i++) {
        const options = i % 2 ? { deadline: Date.now() + 10000 } : {};
        await new Promise((resolve, reject) =>
          client.makeUnaryRequest("/identity.v1.UserAuthService/GetMe", (m: Uint8Array) => Buffer.from(m), (b: Buffer) => b, new Uint8Array(), bearerMetadata(user.accessToken), options, (err, res) => (err ? reject(err) : resolve(res))),
        );
      }
    } finally {
      globalThis.AbortController = Original;
      client.close();
    }
    expect(made).to.equal(0);
  });

  it("abandons a gRPC write past its grpc-timeout: deadline_exceeded, the statement cancelled, nothing committed", async () => {
    const before = await profileName();
    const message = toBinary(UpdateProfileRequestSchema, create(UpdateProfileRequestSchema, { fullName: "Past The Deadline" }));
    const { result, waitingAfterAnswer } = await withOutboxLocked(() => rawGrpc("/identity.v1.ProfileService/UpdateProfile", message, "500m"));
    expect(result).to.deep.equal({ status: String(grpc.status.DEADLINE_EXCEEDED), bytes: 0, rstCode: http2.constants.NGHTTP2_NO_ERROR });
    expect(waitingAfterAnswer).to.equal(0);
    await sleep(200);
    expect(await profileName()).to.equal(before);
  });

  it("abandons a Connect write past its Connect-Timeout-Ms: deadline_exceeded, the statement cancelled, nothing committed", async () => {
    const before = await profileName();
    const { result, waitingAfterAnswer } = await withOutboxLocked(async () => {
      // Raw, so that the answer is the server's (a client gives up at its own deadline too).
      const res = await fetch(`${server.url}/identity.v1.ProfileService/UpdateProfile`, {
        method: "POST",
        headers: { "content-type": "application/json", "connect-timeout-ms": "500", authorization: `Bearer ${user.accessToken}` },
        body: JSON.stringify({ fullName: "Past The Deadline" }),
      });
      return [res.status, await res.json()];
    });
    expect(result).to.deep.equal([504, { code: "deadline_exceeded", message: "the operation timed out" }]);
    expect(waitingAfterAnswer).to.equal(0);
    // And with the Connect client.
    const { result: viaClient } = await withOutboxLocked(() =>
      clientFor(ProfileService, server.url, "connect-json-h2")
        .updateProfile({ fullName: "Past The Deadline" }, { ...bearer(user.accessToken), timeoutMs: 500 })
        .then(
          () => "answered",
          (e: unknown) => ConnectError.from(e).code,
        ),
    );
    expect(viaClient).to.equal(Code.DeadlineExceeded);
    await sleep(200);
    expect(await profileName()).to.equal(before);
  });
});
