// The auth interceptor in front of real service implementations, through connect-es's
// in-memory router transport (real interceptors, real serialisation), with the deny list
// in a real Redis.
import { expect } from "chai";
import { generateKeyPairSync } from "node:crypto";
import { Code, ConnectError, createClient, createRouterTransport, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { UserAuthService } from "../../gen/identity/v1/auth_pb.js";
import { KycService } from "../../gen/identity/v1/kyc_pb.js";
import { PointsService } from "../../gen/identity/v1/points_pb.js";
import { loadConfig } from "../../src/config.js";
import type { Principal } from "../../src/domain/caller.js";
import { createDenyList } from "../../src/domain/deny-list.js";
import { DomainError, unauthenticated } from "../../src/domain/errors.js";
import { createKeyRing, ringKey } from "../../src/domain/keys.js";
import { createTokenIssuer } from "../../src/domain/tokens.js";
import { createLogger } from "../../src/logger.js";
import type { UserView } from "../../src/domain/users.js";
import { createAuthInterceptor, type PrincipalStatus } from "../../src/server/calls/auth.js";
import { callerOf, principalKey } from "../../src/server/calls/context.js";
import { openStores, type Stores } from "../../src/store/index.js";
import { REDIS_URL, uniqueDatabaseUrl, uniqueRedisPrefix } from "../support/env.js";
import { startPrivateRedis, type PrivateRedis } from "../support/private-redis.js";

const config = loadConfig({ NODE_ENV: "test" });
const ring = createKeyRing([ringKey("k1", generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey)], "k1");
const issuer = createTokenIssuer(ring, config);

/** Stands in for the server's error interceptor: domain errors → Connect codes. */
const mapDomainErrors: Interceptor = (next) => async (req) => {
  try {
    return await next(req);
  } catch (e) {
    if (e instanceof DomainError) throw new ConnectError(e.message, e.kind === "unauthenticated" ? Code.Unauthenticated : Code.PermissionDenied);
    throw e;
  }
};

describe("auth interceptor", () => {
  let stores: Stores;
  const users = new Map<string, { active: boolean; staff: boolean }>();
  const liveSessions = new Set<string>();
  let checkPrincipal: (p: Principal) => Promise<PrincipalStatus>;
  let seen: Principal | undefined | "not called";
  let seenAccount: UserView | undefined;
  let escaped: unknown;

  // A database stand-in: what the real checkPrincipal will read from users and sessions.
  const databaseCheck = async (p: Principal) => {
    if (p.kind === "service") return { staff: false };
    const user = users.get(p.subject);
    if (!user?.active || !liveSessions.has(p.sessionId ?? "")) throw unauthenticated();
    return { staff: user.staff };
  };

  /** What the last handler saw (a function, so no narrowing of `seen` survives awaits). */
  const seenPrincipal = () => seen as Principal;

  const record: Interceptor = (next) => async (req) => {
    try {
      return await next(req);
    } catch (e) {
      escaped = e;
      throw e;
    }
  };

  let clients: {
    auth: ReturnType<typeof createClient<typeof UserAuthService>>;
    kyc: ReturnType<typeof createClient<typeof KycService>>;
    points: ReturnType<typeof createClient<typeof PointsService>>;
    health: ReturnType<typeof createClient<typeof Health>>;
  };

  before(async () => {
    stores = await openStores({ databaseUrl: uniqueDatabaseUrl("auth"), redisUrl: REDIS_URL, redisKeyPrefix: uniqueRedisPrefix("auth") }, createLogger("silent"));
    const auth = createAuthInterceptor({
      issuer,
      denyList: createDenyList(stores),
      checkPrincipal: (p) => checkPrincipal(p),
      // Health counts as guarded here, to show that a guarded method without a policy is refused.
      services: [UserAuthService, KycService, PointsService, Health],
      logger: createLogger("silent"),
    });
    const transport = createRouterTransport(
      (router) => {
        const see = (ctx: HandlerContext) => {
          seen = ctx.values.get(principalKey);
          seenAccount = callerOf(ctx).account;
          return {};
        };
        router.service(UserAuthService, { requestOtp: (_, ctx) => see(ctx), refreshToken: (_, ctx) => see(ctx), getMe: (_, ctx) => see(ctx) });
        router.service(KycService, { listKycSubmissions: (_, ctx) => see(ctx) });
        router.service(PointsService, { getWallet: (_, ctx) => see(ctx), adjustPoints: (_, ctx) => see(ctx) });
        router.service(Health, { check: (_, ctx) => see(ctx) });
      },
      { router: { interceptors: [mapDomainErrors, record, auth] } },
    );
    clients = {
      auth: createClient(UserAuthService, transport),
      kyc: createClient(KycService, transport),
      points: createClient(PointsService, transport),
      health: createClient(Health, transport),
    };
  });

  after(() => stores.close());

  beforeEach(() => {
    users.clear();
    liveSessions.clear();
    users.set("alice", { active: true, staff: false });
    users.set("sam", { active: true, staff: true });
    liveSessions.add("s-alice").add("s-sam");
    checkPrincipal = databaseCheck;
    seen = "not called";
    seenAccount = undefined;
    escaped = undefined;
  });

  const userToken = (sub: string, roles: Array<"staff"> = []) => issuer.issueAccess({ sub, sid: `s-${sub}`, roles, kind: "user" });
  const serviceToken = () => issuer.issueAccess({ sub: "service:billing", roles: ["service"], kind: "service" });
  const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

  async function expectCode(call: Promise<unknown>, code: Code): Promise<ConnectError> {
    try {
      await call;
    } catch (e) {
      const error = ConnectError.from(e);
      expect(Code[error.code]).to.equal(Code[code]);
      expect(seen, "handler ran").to.equal("not called");
      return error;
    }
    throw new Error(`expected ${Code[code]}, the call succeeded`);
  }

  describe("unauthenticated", () => {
    it("without an Authorization header", async () => {
      const e = await expectCode(clients.auth.getMe({}), Code.Unauthenticated);
      expect(e.rawMessage).to.equal("Authentication required");
    });

    it("with a header that is not a bearer token", async () => {
      for (const authorization of ["Basic YWxpY2U6cHc=", "Bearer", `Bearer ${userToken("alice").token} extra`, userToken("alice").token]) {
        await expectCode(clients.auth.getMe({}, { headers: { authorization } }), Code.Unauthenticated);
      }
    });

    it("with an invalid token, without saying why", async () => {
      const { token } = userToken("alice");
      const e = await expectCode(clients.auth.getMe({}, bearer(`${token.slice(0, -4)}AAAA`)), Code.Unauthenticated);
      expect(e.rawMessage).to.equal("Invalid access token");
    });

    it("with a denied jti (service tokens; a user token is judged by its session)", async () => {
      const issued = serviceToken();
      await createDenyList(stores).deny(issued.jti, issued.expiresAt);
      const e = await expectCode(clients.points.adjustPoints({}, bearer(issued.token)), Code.Unauthenticated);
      expect(e.rawMessage).to.equal("Invalid access token");
    });

    it("when the session has ended or the user is inactive (checkPrincipal)", async () => {
      const { token } = userToken("alice");
      liveSessions.delete("s-alice");
      await expectCode(clients.auth.getMe({}, bearer(token)), Code.Unauthenticated);
      liveSessions.add("s-alice");
      users.set("alice", { active: false, staff: false });
      await expectCode(clients.auth.getMe({}, bearer(token)), Code.Unauthenticated);
    });
  });

  describe("USER methods", () => {
    it("hand the principal to the handler", async () => {
      const issued = userToken("alice");
      await clients.auth.getMe({}, bearer(issued.token));
      expect(seen).to.deep.equal({ kind: "user", subject: "alice", sessionId: "s-alice", roles: [], jti: issued.jti, expiresAt: issued.expiresAt });
    });

    it("accept the scheme in any case (gRPC metadata is the same header)", async () => {
      await clients.points.getWallet({}, { headers: { authorization: `bearer ${userToken("alice").token}` } });
      expect(seen).to.include({ subject: "alice" });
    });

    it("refuse service tokens", async () => {
      await expectCode(clients.auth.getMe({}, bearer(serviceToken().token)), Code.PermissionDenied);
    });
  });

  describe("STAFF methods", () => {
    it("refuse a user who is not staff", async () => {
      await expectCode(clients.kyc.listKycSubmissions({}, bearer(userToken("alice").token)), Code.PermissionDenied);
    });

    it("admit a staff user, with the staff role in the principal", async () => {
      await clients.kyc.listKycSubmissions({}, bearer(userToken("sam", ["staff"]).token));
      expect(seen).to.include({ kind: "user", subject: "sam" });
      expect(seenPrincipal().roles).to.deep.equal(["staff"]);
    });

    it("follow users.is_staff, not the token's role", async () => {
      await expectCode(clients.kyc.listKycSubmissions({}, bearer(userToken("alice", ["staff"]).token)), Code.PermissionDenied);
      await clients.kyc.listKycSubmissions({}, bearer(userToken("sam").token));
      expect(seenPrincipal().roles).to.deep.equal(["staff"]);
      seen = "not called";
      await clients.auth.getMe({}, bearer(userToken("alice", ["staff"]).token));
      expect(seenPrincipal().roles, "a demoted user's principal").to.deep.equal([]);
    });

    it("refuse service tokens", async () => {
      await expectCode(clients.kyc.listKycSubmissions({}, bearer(serviceToken().token)), Code.PermissionDenied);
    });
  });

  describe("STAFF_OR_SERVICE methods", () => {
    it("admit a service token", async () => {
      const issued = serviceToken();
      await clients.points.adjustPoints({}, bearer(issued.token));
      expect(seen).to.deep.equal({ kind: "service", subject: "billing", roles: ["service"], jti: issued.jti, expiresAt: issued.expiresAt });
    });

    it("admit a staff user and refuse other users", async () => {
      await clients.points.adjustPoints({}, bearer(userToken("sam").token));
      expect(seen).to.include({ subject: "sam" });
      seen = "not called";
      await expectCode(clients.points.adjustPoints({}, bearer(userToken("alice").token)), Code.PermissionDenied);
    });

    it("refuse a denied service token", async () => {
      const issued = serviceToken();
      await createDenyList(stores).deny(issued.jti, issued.expiresAt);
      await expectCode(clients.points.adjustPoints({}, bearer(issued.token)), Code.Unauthenticated);
    });
  });

  describe("other policies", () => {
    it("NONE passes without a token, and ignores a bad one", async () => {
      await clients.auth.refreshToken({});
      expect(seen).to.equal(undefined);
      seen = "not called";
      await clients.auth.refreshToken({}, bearer("expired.or.garbage"));
      expect(seen).to.equal(undefined);
      seen = "not called";
      await clients.auth.refreshToken({}, bearer(userToken("alice").token));
      expect(seen).to.equal(undefined);
    });

    it("OPTIONAL_USER hands a valid user's principal to the handler; no, bad or ended tokens count as none", async () => {
      await clients.auth.requestOtp({});
      expect(seen).to.equal(undefined);
      const issued = userToken("alice");
      await clients.auth.requestOtp({}, bearer(issued.token));
      expect(seenPrincipal()).to.include({ kind: "user", subject: "alice", sessionId: "s-alice" });
      for (const token of ["expired.or.garbage", serviceToken().token]) {
        seen = "not called";
        await clients.auth.requestOtp({}, bearer(token));
        expect(seen, token).to.equal(undefined);
      }
      liveSessions.delete("s-alice");
      seen = "not called";
      await clients.auth.requestOtp({}, bearer(issued.token));
      expect(seen).to.equal(undefined);
    });

    it("OPTIONAL_USER still fails the call when the session cannot be checked (store down)", async () => {
      checkPrincipal = async () => {
        throw new ConnectError("database down", Code.Unavailable);
      };
      await expectCode(clients.auth.requestOtp({}, bearer(userToken("alice").token)), Code.Unavailable);
    });

    it("a method without a policy is refused, even to staff", async () => {
      await expectCode(clients.health.check({}, bearer(userToken("sam").token)), Code.PermissionDenied);
    });

    it("services it does not guard pass untouched", async () => {
      const open = createAuthInterceptor({ issuer, denyList: createDenyList(stores), checkPrincipal, services: [UserAuthService], logger: createLogger("silent") });
      const transport = createRouterTransport((router) => router.service(Health, { check: () => ({}) }), { router: { interceptors: [open] } });
      await createClient(Health, transport).check({});
    });
  });

  describe("checkPrincipal", () => {
    it("hands the account it read to the call (GetMe answers from it)", async () => {
      const account: UserView = { id: "alice", username: "alice", email: "", phoneNumber: "+15550000001", isActive: true, isStaff: false, dateJoined: new Date(0), lastLogin: null };
      checkPrincipal = async (p) => ({ ...(await databaseCheck(p)), account });
      await clients.auth.getMe({}, bearer(userToken("alice").token));
      expect(seenAccount).to.deep.equal(account);
      checkPrincipal = databaseCheck;
      await clients.auth.getMe({}, bearer(userToken("alice").token));
      expect(seenAccount).to.equal(undefined);
    });

    it("receives the verified principal", async () => {
      const calls: Principal[] = [];
      checkPrincipal = async (p) => {
        calls.push(p);
        return databaseCheck(p);
      };
      const issued = userToken("alice");
      await clients.auth.getMe({}, bearer(issued.token));
      expect(calls).to.deep.equal([{ kind: "user", subject: "alice", sessionId: "s-alice", roles: [], jti: issued.jti, expiresAt: issued.expiresAt }]);
    });

    it("errors propagate unchanged", async () => {
      const thrown = new ConnectError("database down", Code.Unavailable);
      checkPrincipal = async () => {
        throw thrown;
      };
      const e = await expectCode(clients.auth.getMe({}, bearer(userToken("alice").token)), Code.Unavailable);
      expect(escaped).to.equal(thrown);
      expect(e.rawMessage).to.equal("database down");
    });

    it("a denied service token is refused before checkPrincipal runs", async () => {
      const issued = serviceToken();
      await createDenyList(stores).deny(issued.jti, issued.expiresAt);
      checkPrincipal = async () => {
        throw new Error("should not surface");
      };
      await expectCode(clients.points.adjustPoints({}, bearer(issued.token)), Code.Unauthenticated);
    });
  });
});

describe("deny list", () => {
  let stores: Stores;
  before(async () => {
    stores = await openStores({ databaseUrl: uniqueDatabaseUrl("deny"), redisUrl: REDIS_URL, redisKeyPrefix: uniqueRedisPrefix("deny") }, createLogger("silent"));
  });
  after(() => stores.close());

  it("denies a jti until the token's expiry (plus a margin), then forgets it", async () => {
    const denyList = createDenyList(stores);
    const expiresAt = Math.floor(Date.now() / 1000) + 900;
    expect(await denyList.isDenied("j1")).to.equal(false);
    await denyList.deny("j1", expiresAt);
    expect(await denyList.isDenied("j1")).to.equal(true);
    expect(await stores.redis.ttl("denied-jti:j1")).to.be.within(900, 961);
  });

  it("stores nothing for a token that has expired already", async () => {
    const denyList = createDenyList(stores);
    await denyList.deny("j2", Math.floor(Date.now() / 1000) - 3600);
    expect(await stores.redis.exists("denied-jti:j2")).to.equal(0);
    expect(await denyList.isDenied("j2")).to.equal(false);
  });

  it("keeps a denial when Redis loses its cache (restart without persistence, eviction)", async () => {
    const denyList = createDenyList(stores);
    await denyList.deny("j3", Math.floor(Date.now() / 1000) + 900);
    await stores.redis.del("denied-jti:j3");
    expect(await denyList.isDenied("j3")).to.equal(true);
    // …and the answer is cached again.
    expect(await stores.redis.get("denied-jti:j3")).to.equal("1");
  });

  it("overrides a cached 'not denied' at once", async () => {
    const denyList = createDenyList(stores);
    expect(await denyList.isDenied("j4")).to.equal(false);
    expect(await stores.redis.get("denied-jti:j4")).to.equal("0");
    await denyList.deny("j4", Math.floor(Date.now() / 1000) + 900);
    expect(await denyList.isDenied("j4")).to.equal(true);
  });

  describe("with Redis down", function () {
    this.timeout(30_000);
    let redis: PrivateRedis;
    let own: Stores;
    before(async () => {
      redis = await startPrivateRedis();
      own = await openStores({ databaseUrl: uniqueDatabaseUrl("denydown"), redisUrl: redis.url, redisKeyPrefix: uniqueRedisPrefix("denydown"), redisCommandTimeoutMs: 300 }, createLogger("silent"));
    });
    after(async () => {
      await own?.close();
      await redis?.close();
    });

    it("answers from PostgreSQL, and a denial made meanwhile holds once Redis is back", async () => {
      const denyList = createDenyList(own);
      const exp = Math.floor(Date.now() / 1000) + 900;
      await denyList.deny("d1", exp);
      await redis.stop();
      expect(await denyList.isDenied("d1")).to.equal(true);
      expect(await denyList.isDenied("d2")).to.equal(false);
      await denyList.deny("d2", exp);
      expect(await denyList.isDenied("d2")).to.equal(true);
      await redis.start();
      for (let i = 0; i < 100 && own.redis.status !== "ready"; i++) await new Promise((r) => setTimeout(r, 50));
      expect(await denyList.isDenied("d1")).to.equal(true);
      expect(await denyList.isDenied("d2")).to.equal(true);
    });
  });
});
