// PointsService end to end: the real server on a free port, real clients (Connect JSON over
// HTTP/1.1, gRPC through connect-node, @grpc/grpc-js, REST), real PostgreSQL and Redis;
// users signed up through the OTP flow, staff promoted in the database, a service token.
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import {
  AdjustPointsRequestSchema,
  AdjustPointsResponseSchema,
  GetWalletRequestSchema,
  GetWalletResponseSchema,
  PointsService,
} from "../../gen/identity/v1/points_pb.js";
import { failure, violatedFields } from "../support/failures.js";
import { bearer, bearerMetadata, clientFor, grpcJsClient, grpcUnary, signUp, type SignedUp, type Wire } from "../support/clients.js";
import { mintServiceToken } from "../support/service-token.js";
import { startTestServer, type TestServer } from "../support/server.js";

describe("PointsService end to end", function () {
  let server: TestServer;
  let staff: SignedUp;
  let serviceToken: string;
  let keyCounter = 0;
  const key = () => `e2e-${++keyCounter}-${randomUUID()}`;

  before(async () => {
    server = await startTestServer();
    staff = await signUp(server.url);
    await server.app.stores.models.User.update({ isStaff: true }, { where: { id: staff.userId } });
    serviceToken = await mintServiceToken(server.env, "billing");
  });

  after(() => server?.close());

  const WIRES: Wire[] = ["connect-json-h1", "grpc"];
  for (const wire of WIRES) {
    describe(`over ${wire}`, () => {
      const points = () => clientFor(PointsService, server.url, wire);

      it("GetWallet answers zeros before any adjustment", async () => {
        const user = await signUp(server.url);
        const wallet = await points().getWallet({}, bearer(user.accessToken));
        expect(wallet).to.deep.include({ balance: "0.00", points: 0n, totalPoints: 0n });
      });

      it("AdjustPoints by staff and by a service; GetWallet and the ledger follow", async () => {
        const user = await signUp(server.url);
        const credit = await points().adjustPoints({ userId: user.userId, delta: 1234n, reason: "welcome", idempotencyKey: key() }, bearer(staff.accessToken));
        expect(credit).to.deep.include({ balance: "12.34", points: 1234n, totalPoints: 1234n });
        expect(credit.transaction).to.deep.include({ userId: user.userId, delta: 1234n, balanceAfter: 1234n, reason: "welcome" });
        const debit = await points().adjustPoints({ userId: user.userId, delta: -34n, reason: "shop", idempotencyKey: key() }, bearer(serviceToken));
        expect(debit).to.deep.include({ balance: "12.00", points: 1200n, totalPoints: 1234n });

        const wallet = await points().getWallet({}, bearer(user.accessToken));
        expect(wallet).to.deep.include({ balance: "12.00", points: 1200n, totalPoints: 1234n });
        expect(wallet.lastUpdated).to.not.equal(undefined);
        const ledger = await points().listPointsTransactions({}, bearer(user.accessToken));
        expect(ledger.transactions.map((t) => [t.id, t.delta, t.balanceAfter])).to.deep.equal([
          [debit.transaction!.id, -34n, 1200n],
          [credit.transaction!.id, 1234n, 1234n],
        ]);
        expect(ledger.nextPageToken).to.equal("");
      });

      it("AdjustPoints is permission_denied to a normal user and unauthenticated without a token", async () => {
        const user = await signUp(server.url);
        const request = { userId: user.userId, delta: 10n, reason: "self-service", idempotencyKey: key() };
        expect((await failure(points().adjustPoints(request, bearer(user.accessToken)))).code).to.equal(Code.PermissionDenied);
        expect((await failure(points().adjustPoints(request))).code).to.equal(Code.Unauthenticated);
        expect((await points().getWallet({}, bearer(user.accessToken))).points).to.equal(0n);
      });

      it("maps the domain's refusals to their codes, with field violations", async () => {
        const user = await signUp(server.url);
        const auth = bearer(staff.accessToken);
        const bad = await failure(points().adjustPoints({ userId: "nope", delta: 0n, reason: "", idempotencyKey: "" }, auth));
        expect(bad.code).to.equal(Code.InvalidArgument);
        expect(violatedFields(bad)).to.deep.equal(["user_id", "delta", "reason", "idempotency_key"]);
        expect((await failure(points().adjustPoints({ userId: randomUUID(), delta: 5n, reason: "r", idempotencyKey: key() }, auth))).code).to.equal(Code.NotFound);
        expect((await failure(points().adjustPoints({ userId: user.userId, delta: -1n, reason: "r", idempotencyKey: key() }, auth))).code).to.equal(Code.FailedPrecondition);
        const page = await failure(points().listPointsTransactions({ pageSize: 101, pageToken: "garbage!" }, bearer(user.accessToken)));
        expect(page.code).to.equal(Code.InvalidArgument);
        expect(violatedFields(page)).to.deep.equal(["page_size", "page_token"]);
      });

      it("answers a repeated idempotency key with the first result; other arguments are invalid_argument", async () => {
        const user = await signUp(server.url);
        const request = { userId: user.userId, delta: 70n, reason: "refund", idempotencyKey: key() };
        const first = await points().adjustPoints(request, bearer(staff.accessToken));
        await points().adjustPoints({ ...request, idempotencyKey: key() }, bearer(staff.accessToken));
        const again = await points().adjustPoints(request, bearer(serviceToken));
        expect(again).to.deep.equal(first);
        const reused = await failure(points().adjustPoints({ ...request, delta: 71n }, bearer(staff.accessToken)));
        expect(reused.code).to.equal(Code.InvalidArgument);
        expect(violatedFields(reused)).to.deep.equal(["idempotency_key"]);
        expect((await points().getWallet({}, bearer(user.accessToken))).points).to.equal(140n);
      });

      it("pages through the ledger newest first", async () => {
        const user = await signUp(server.url);
        const made: string[] = [];
        for (let i = 1; i <= 7; i++) {
          made.push((await points().adjustPoints({ userId: user.userId, delta: BigInt(i), reason: `r${i}`, idempotencyKey: key() }, bearer(serviceToken))).transaction!.id);
        }
        const seen: string[] = [];
        let pageToken = "";
        do {
          const page = await points().listPointsTransactions({ pageSize: 3, pageToken }, bearer(user.accessToken));
          seen.push(...page.transactions.map((t) => t.id));
          pageToken = page.nextPageToken;
        } while (pageToken);
        expect(seen).to.deep.equal(made.reverse());
      });
    });
  }

  it("lets exactly one of 30 parallel debits of the whole balance through, over the network", async () => {
    const user = await signUp(server.url);
    const points = clientFor(PointsService, server.url, "connect-json-h1");
    const overGrpc = clientFor(PointsService, server.url, "grpc");
    await points.adjustPoints({ userId: user.userId, delta: 500n, reason: "stake", idempotencyKey: key() }, bearer(staff.accessToken));
    const outcomes = await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) =>
        (i % 2 ? overGrpc : points).adjustPoints({ userId: user.userId, delta: -500n, reason: "all in", idempotencyKey: key() }, bearer(serviceToken)),
      ),
    );
    const codes = outcomes.map((o) => (o.status === "fulfilled" ? "ok" : Code[ConnectError.from(o.reason).code]));
    expect(codes.filter((c) => c === "ok")).to.have.length(1);
    expect(codes.filter((c) => c === Code[Code.FailedPrecondition])).to.have.length(29);
    const wallet = await points.getWallet({}, bearer(user.accessToken));
    expect(wallet).to.deep.include({ balance: "0.00", points: 0n, totalPoints: 500n });
    const ledger = await points.listPointsTransactions({ pageSize: 100 }, bearer(user.accessToken));
    expect(ledger.transactions.reduce((s, t) => s + t.delta, 0n)).to.equal(wallet.points);
  });

  describe("over @grpc/grpc-js", () => {
    let client: grpc.Client;
    before(() => (client = grpcJsClient(server.port)));
    after(() => client?.close());

    it("GetWallet and AdjustPoints (service token ok, normal user PERMISSION_DENIED)", async () => {
      const user = await signUp(server.url);
      const adjust = (token: string) =>
        grpcUnary(
          client,
          "/identity.v1.PointsService/AdjustPoints",
          AdjustPointsRequestSchema,
          AdjustPointsResponseSchema,
          { $typeName: "identity.v1.AdjustPointsRequest", userId: user.userId, delta: 250n, reason: "grpc", idempotencyKey: key() },
          bearerMetadata(token),
        );
      const adjusted = await adjust(serviceToken);
      expect(adjusted).to.deep.include({ balance: "2.50", points: 250n, totalPoints: 250n });
      const denied = await adjust(user.accessToken).then(
        () => undefined,
        (e: grpc.ServiceError) => e.code,
      );
      expect(denied).to.equal(grpc.status.PERMISSION_DENIED);
      const wallet = await grpcUnary(client, "/identity.v1.PointsService/GetWallet", GetWalletRequestSchema, GetWalletResponseSchema, { $typeName: "identity.v1.GetWalletRequest" }, bearerMetadata(user.accessToken));
      expect(wallet).to.deep.include({ balance: "2.50", points: 250n, totalPoints: 250n });
    });
  });

  describe("over REST", () => {
    it("POST /api/admin/points/adjust and GET /api/users/wallet, /api/users/wallet/transactions", async () => {
      const user = await signUp(server.url);
      const adjusted = await fetch(`${server.url}/api/admin/points/adjust`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${staff.accessToken}` },
        body: JSON.stringify({ user_id: user.userId, delta: "99", reason: "rest", idempotency_key: key() }),
      });
      expect(adjusted.status).to.equal(200);
      expect(await adjusted.json()).to.deep.include({ balance: "0.99", points: "99", total_points: "99" });
      const wallet = await fetch(`${server.url}/api/users/wallet`, { headers: { authorization: `Bearer ${user.accessToken}` } });
      expect(await wallet.json()).to.deep.include({ balance: "0.99", points: "99", total_points: "99" });
      const ledger = (await (await fetch(`${server.url}/api/users/wallet/transactions?page_size=5`, { headers: { authorization: `Bearer ${user.accessToken}` } })).json()) as {
        transactions: Array<Record<string, unknown>>;
      };
      expect(ledger.transactions.map((t) => [t.delta, t.balance_after, t.reason])).to.deep.equal([["99", "99", "rest"]]);
      const denied = await fetch(`${server.url}/api/admin/points/adjust`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${user.accessToken}` },
        body: JSON.stringify({ user_id: user.userId, delta: "1", reason: "rest", idempotency_key: key() }),
      });
      expect(denied.status).to.equal(403);
    });
  });
});
