import { expect } from "chai";
import { createHmac, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { loadConfig } from "../../src/config.js";
import { DomainError } from "../../src/domain/errors.js";
import { createKeyRing, ringKey, type RingKey } from "../../src/domain/keys.js";
import { createTokenIssuer, InvalidTokenError } from "../../src/domain/tokens.js";

const config = loadConfig({ NODE_ENV: "test" });
const { issuer: iss, audience: aud } = config.jwt;
const ecKey = ringKey("ec-1", generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey);
const rsaKey = ringKey("rsa-1", generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey);
const ring = createKeyRing([ecKey, rsaKey], "ec-1");
const tokens = createTokenIssuer(ring, config);

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);

/** Claims of a valid user token; override to break one. */
function userClaims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { iss, aud, sub: "user-1", sid: "session-1", jti: "jti-1", iat: now(), exp: now() + 600, typ: "access", roles: [], ...extra };
}

/** Signs header.payload the way JOSE does, with any key, so tests can forge exactly. */
function forge(header: Record<string, unknown>, payload: Record<string, unknown>, signer: (data: Buffer) => Buffer): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${signer(Buffer.from(input)).toString("base64url")}`;
}
const es256 = (key: KeyObject) => (data: Buffer) => sign("sha256", data, { key, dsaEncoding: "ieee-p1363" });
const rs256 = (key: KeyObject) => (data: Buffer) => sign("sha256", data, key);
/** A correctly signed token from a ring key, with the given header fields and claims. */
const signedBy = (key: RingKey, claims: Record<string, unknown>, header: Record<string, unknown> = {}) =>
  forge({ alg: key.alg, typ: "JWT", kid: key.kid, ...header }, claims, key.alg === "ES256" ? es256(key.privateKey) : rs256(key.privateKey));

function expectRefused(token: string, reason?: RegExp): void {
  let error: unknown;
  try {
    tokens.verifyAccess(token);
  } catch (e) {
    error = e;
  }
  expect(error, "token was accepted").to.be.instanceOf(InvalidTokenError);
  const refused = error as InvalidTokenError;
  expect(refused).to.be.instanceOf(DomainError);
  expect(refused.kind).to.equal("unauthenticated");
  expect(refused.message).to.equal("Invalid access token");
  if (reason) expect(refused.reason).to.match(reason);
}

describe("access tokens", () => {
  describe("accepts", () => {
    it("a user token it issued", () => {
      const issued = tokens.issueAccess({ sub: "user-1", sid: "session-1", roles: ["staff"], kind: "user" });
      expect(issued.expiresAt - now()).to.be.within(config.jwt.accessTtlSeconds - 1, config.jwt.accessTtlSeconds);
      expect(tokens.verifyAccess(issued.token)).to.deep.equal({
        kind: "user",
        subject: "user-1",
        sessionId: "session-1",
        roles: ["staff"],
        jti: issued.jti,
        expiresAt: issued.expiresAt,
      });
    });

    it("with the documented header and claims", () => {
      const issued = tokens.issueAccess({ sub: "user-1", sid: "session-1", roles: [], kind: "user", ttlSeconds: 60 });
      const [header, payload] = issued.token.split(".").slice(0, 2).map((p) => JSON.parse(Buffer.from(p, "base64url").toString()));
      expect(header).to.deep.equal({ alg: "ES256", typ: "JWT", kid: "ec-1" });
      expect(payload).to.deep.equal({ iss, aud, sub: "user-1", sid: "session-1", jti: issued.jti, iat: issued.expiresAt - 60, exp: issued.expiresAt, typ: "access", roles: [] });
    });

    it("a service token", () => {
      const issued = tokens.issueAccess({ sub: "service:billing", roles: ["service"], kind: "service", ttlSeconds: 86400 });
      expect(tokens.verifyAccess(issued.token)).to.deep.equal({ kind: "service", subject: "billing", roles: ["service"], jti: issued.jti, expiresAt: issued.expiresAt });
    });

    it("a token of the ring's RSA key", () => {
      expect(tokens.verifyAccess(signedBy(rsaKey, userClaims())).subject).to.equal("user-1");
    });

    it("exp and nbf within the clock tolerance", () => {
      expect(() => tokens.verifyAccess(signedBy(ecKey, userClaims({ exp: now() - 2, nbf: now() + 2 })))).to.not.throw();
    });

    it("roles it does not know, granting nothing", () => {
      expect(tokens.verifyAccess(signedBy(ecKey, userClaims({ roles: ["auditor", "service"] }))).roles).to.deep.equal([]);
    });
  });

  describe("refuses", () => {
    const valid = () => tokens.issueAccess({ sub: "user-1", sid: "session-1", roles: [], kind: "user" }).token;

    it("a tampered payload", () => {
      const [h, , s] = valid().split(".");
      expectRefused(`${h}.${b64(userClaims({ roles: ["staff"] }))}.${s}`, /invalid signature/);
    });

    it("a tampered signature", () => {
      const [h, p, s] = valid().split(".") as [string, string, string];
      const i = 10;
      const flipped = s.slice(0, i) + (s[i] === "A" ? "B" : "A") + s.slice(i + 1);
      expectRefused(`${h}.${p}.${flipped}`, /invalid signature/);
    });

    it('alg "none"', () => {
      expectRefused(`${b64({ alg: "none", typ: "JWT", kid: "ec-1" })}.${b64(userClaims())}.`, /alg "none"/);
    });

    it("HS256 keyed with the public key PEM (algorithm confusion)", () => {
      for (const key of [ecKey, rsaKey]) {
        const secret = key.publicKey.export({ type: "spki", format: "pem" });
        const token = forge({ alg: "HS256", typ: "JWT", kid: key.kid }, userClaims(), (data) => createHmac("sha256", secret).update(data).digest());
        expectRefused(token, /alg "HS256"/);
      }
    });

    it("an RS256 token naming an EC kid", () => {
      const token = forge({ alg: "RS256", typ: "JWT", kid: ecKey.kid }, userClaims(), rs256(rsaKey.privateKey));
      expectRefused(token, /alg "RS256" is not ES256/);
    });

    it("an unknown kid, or none", () => {
      expectRefused(forge({ alg: "ES256", typ: "JWT", kid: "ec-2" }, userClaims(), es256(ecKey.privateKey)), /unknown kid/);
      expectRefused(forge({ alg: "ES256", typ: "JWT" }, userClaims(), es256(ecKey.privateKey)), /unknown kid/);
    });

    for (const carried of ["jku", "jwk", "x5u", "x5c", "crit"]) {
      it(`a header carrying ${carried}`, () => {
        expectRefused(signedBy(ecKey, userClaims(), { [carried]: carried === "jwk" ? ecKey.jwk : "https://attacker.example/keys" }), new RegExp(`header carries ${carried}`));
      });
    }

    it("an expired token", () => {
      expectRefused(signedBy(ecKey, userClaims({ iat: now() - 1000, exp: now() - 60 })), /jwt expired/);
    });

    it("a token without exp", () => {
      const { exp: _, ...claims } = userClaims();
      expectRefused(signedBy(ecKey, claims), /no exp/);
    });

    it("nbf in the future", () => {
      expectRefused(signedBy(ecKey, userClaims({ nbf: now() + 60 })), /jwt not active/);
    });

    it("a wrong issuer", () => {
      expectRefused(signedBy(ecKey, userClaims({ iss: "someone-else" })), /jwt issuer invalid/);
    });

    it("a wrong audience", () => {
      expectRefused(signedBy(ecKey, userClaims({ aud: "other-api" })), /jwt audience invalid/);
    });

    it("a wrong or missing typ", () => {
      expectRefused(signedBy(ecKey, userClaims({ typ: "refresh" })), /typ "refresh"/);
      expectRefused(signedBy(ecKey, userClaims({ typ: undefined })), /typ undefined/);
    });

    it("claims that break the layout", () => {
      expectRefused(signedBy(ecKey, userClaims({ sid: undefined })), /user token without sid/);
      expectRefused(signedBy(ecKey, userClaims({ sub: "service:billing" })), /user token with a service subject/);
      expectRefused(signedBy(ecKey, userClaims({ typ: "service", sid: undefined })), /service token with a malformed sub/);
      expectRefused(signedBy(ecKey, userClaims({ typ: "service", sub: "service:billing" })), /service token with sid/);
      expectRefused(signedBy(ecKey, userClaims({ typ: "service", sub: "service:billing", sid: undefined })), /without the service role/);
      expectRefused(signedBy(ecKey, userClaims({ roles: "staff" })), /roles/);
      expectRefused(signedBy(ecKey, userClaims({ jti: undefined })), /no jti/);
    });

    it("a token signed by a key outside the ring", () => {
      const stranger = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
      expectRefused(forge({ alg: "ES256", typ: "JWT", kid: ecKey.kid }, userClaims(), es256(stranger)), /invalid signature/);
    });

    it("garbage", () => {
      for (const junk of ["", "abc", "a.b.c", `${b64([1])}.${b64(userClaims())}.x`, "x".repeat(5000)]) expectRefused(junk);
    });
  });

  describe("rotation", () => {
    it("keeps verifying the old key's tokens while the new key signs", () => {
      const before = createKeyRing([ecKey], "ec-1");
      const old = createTokenIssuer(before, config).issueAccess({ sub: "user-1", sid: "s", roles: [], kind: "user" });
      const newKey = ringKey("ec-2", generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey);
      const after = createTokenIssuer(createKeyRing([ecKey, newKey], "ec-2"), config);
      const fresh = after.issueAccess({ sub: "user-1", sid: "s", roles: [], kind: "user" });
      expect(JSON.parse(Buffer.from(fresh.token.split(".")[0]!, "base64url").toString()).kid).to.equal("ec-2");
      expect(after.verifyAccess(old.token).jti).to.equal(old.jti);
      expect(after.verifyAccess(fresh.token).jti).to.equal(fresh.jti);
      expect(() => createTokenIssuer(before, config).verifyAccess(fresh.token)).to.throw(InvalidTokenError);
    });
  });

  describe("issueAccess refuses requests that break the claim layout", () => {
    const bad: Array<Parameters<typeof tokens.issueAccess>[0]> = [
      { sub: "user-1", roles: [], kind: "user" },
      { sub: "service:billing", sid: "s", roles: [], kind: "user" },
      { sub: "user-1", sid: "s", roles: ["service"], kind: "user" },
      { sub: "billing", roles: ["service"], kind: "service" },
      { sub: "service:Billing", roles: ["service"], kind: "service" },
      { sub: "service:billing", sid: "s", roles: ["service"], kind: "service" },
      { sub: "service:billing", roles: ["staff"], kind: "service" },
      { sub: "user-1", sid: "s", roles: [], kind: "user", ttlSeconds: 0 },
      { sub: "user-1", sid: "s", roles: [], kind: "user", ttlSeconds: 1.5 },
    ];
    for (const request of bad) {
      it(JSON.stringify(request), () => {
        expect(() => tokens.issueAccess(request)).to.throw(Error, /^issueAccess: /);
      });
    }
  });
});
