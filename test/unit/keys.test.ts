import { expect } from "chai";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { loadConfig } from "../../src/config.js";
import { createKeyRing, KeyError, loadKeyRing, ringKey } from "../../src/domain/keys.js";
import { createTokenIssuer } from "../../src/domain/tokens.js";
import { createLogger } from "../../src/logger.js";
import { JWKS_PATH, jwksRoute } from "../../src/server/endpoints/jwks.js";

const logger = createLogger("silent");
const ec = () => generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
const rsa = (bits = 2048) => generateKeyPairSync("rsa", { modulusLength: bits }).privateKey;
const pem = (key: KeyObject) => key.export({ type: "pkcs8", format: "pem" });

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "keys-test-"));
}

/** Writes <kid>.pem with the given mtime (seconds since the epoch). */
function writeKey(dir: string, kid: string, key: KeyObject | string, mtime = 1_700_000_000): void {
  const file = path.join(dir, `${kid}.pem`);
  fs.writeFileSync(file, typeof key === "string" ? key : pem(key), { mode: 0o600 });
  fs.utimesSync(file, mtime, mtime);
}

function configFor(env: Record<string, string>) {
  return loadConfig({ NODE_ENV: "test", ...env });
}

describe("key ring", () => {
  const dirs: string[] = [];
  const dir = () => {
    const d = tempDir();
    dirs.push(d);
    return d;
  };
  after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  describe("from JWT_KEYS_DIR", () => {
    let keysDir: string;
    before(() => {
      keysDir = dir();
      writeKey(keysDir, "ec-2024", ec(), 1_700_000_000);
      writeKey(keysDir, "rsa-2025", rsa(), 1_700_000_100);
    });

    it("signs with the newest key and verifies with both", () => {
      const ring = loadKeyRing(configFor({ JWT_KEYS_DIR: keysDir }), logger);
      expect(ring.signing.kid).to.equal("rsa-2025");
      expect(ring.signing.alg).to.equal("RS256");
      expect(ring.get("ec-2024")?.alg).to.equal("ES256");
      expect(ring.get("rsa-2025")?.alg).to.equal("RS256");
      expect(ring.get("nope")).to.equal(undefined);
      expect(ring.get("__proto__")).to.equal(undefined);

      const older = createKeyRing([ring.get("ec-2024")!], "ec-2024");
      const config = configFor({});
      const fromOld = createTokenIssuer(older, config).issueAccess({ sub: "u1", sid: "s1", roles: [], kind: "user" });
      const fromNew = createTokenIssuer(ring, config).issueAccess({ sub: "u1", sid: "s1", roles: [], kind: "user" });
      const verifier = createTokenIssuer(ring, config);
      expect(verifier.verifyAccess(fromOld.token).jti).to.equal(fromOld.jti);
      expect(verifier.verifyAccess(fromNew.token).jti).to.equal(fromNew.jti);
    });

    it("publishes both public keys, and nothing private, in the JWKS", () => {
      const ring = loadKeyRing(configFor({ JWT_KEYS_DIR: keysDir }), logger);
      const byKid = Object.fromEntries(ring.jwks.keys.map((k) => [k.kid, k]));
      expect(Object.keys(byKid)).to.have.members(["ec-2024", "rsa-2025"]);
      expect(byKid["ec-2024"]).to.have.all.keys("kty", "crv", "x", "y", "kid", "alg", "use");
      expect(byKid["ec-2024"]).to.include({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig" });
      expect(byKid["rsa-2025"]).to.have.all.keys("kty", "n", "e", "kid", "alg", "use");
      expect(byKid["rsa-2025"]).to.include({ kty: "RSA", e: "AQAB", alg: "RS256", use: "sig" });
    });

    it("breaks mtime ties by name (the later name signs)", () => {
      const d = dir();
      writeKey(d, "b", ec());
      writeKey(d, "a", ec());
      expect(loadKeyRing(configFor({ JWT_KEYS_DIR: d }), logger).signing.kid).to.equal("b");
    });

    it("signs with JWT_SIGNING_KID when set", () => {
      const ring = loadKeyRing(configFor({ JWT_KEYS_DIR: keysDir, JWT_SIGNING_KID: "ec-2024" }), logger);
      expect(ring.signing.kid).to.equal("ec-2024");
      expect(() => loadKeyRing(configFor({ JWT_KEYS_DIR: keysDir, JWT_SIGNING_KID: "gone" }), logger)).to.throw(KeyError, /^JWT_SIGNING_KID: no gone\.pem in /);
    });

    it("skips hidden entries and sub-directories", () => {
      const d = dir();
      writeKey(d, "k1", ec());
      fs.writeFileSync(path.join(d, ".DS_Store"), "junk");
      fs.mkdirSync(path.join(d, "..data"));
      const ring = loadKeyRing(configFor({ JWT_KEYS_DIR: d }), logger);
      expect(ring.jwks.keys.map((k) => k.kid)).to.deep.equal(["k1"]);
    });
  });

  describe("refuses to start with a bad key, naming the file", () => {
    const cases: Array<[string, (d: string) => void, RegExp]> = [
      ["garbage", (d) => fs.writeFileSync(path.join(d, "bad.pem"), "not a key"), /bad\.pem: not an unencrypted PEM private key/],
      ["a public key", (d) => fs.writeFileSync(path.join(d, "pub.pem"), generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" })), /pub\.pem: not an unencrypted PEM private key/],
      ["RSA 1024", (d) => writeKey(d, "short", rsa(1024)), /short\.pem: RSA key of 1024 bits is too short/],
      ["EC P-384", (d) => writeKey(d, "p384", generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey), /p384\.pem: EC curve secp384r1 is not supported/],
      ["Ed25519", (d) => writeKey(d, "ed", generateKeyPairSync("ed25519").privateKey), /ed\.pem: ed25519 keys are not supported/],
      ["a bad kid", (d) => writeKey(d, "sp ace", ec()), /sp ace\.pem: key id "sp ace" must be/],
      ["a file that is not .pem", (d) => fs.writeFileSync(path.join(d, "notes.txt"), "x"), /notes\.txt: not a \.pem file/],
    ];
    for (const [what, setup, message] of cases) {
      it(what, () => {
        const d = dir();
        writeKey(d, "good", ec());
        setup(d);
        expect(() => loadKeyRing(configFor({ JWT_KEYS_DIR: d }), logger)).to.throw(KeyError, message);
      });
    }

    it("an empty folder", () => {
      expect(() => loadKeyRing(configFor({ JWT_KEYS_DIR: dir() }), logger)).to.throw(KeyError, /^JWT_KEYS_DIR: no <kid>\.pem private key in /);
    });

    it("a missing folder", () => {
      expect(() => loadKeyRing(configFor({ JWT_KEYS_DIR: "/nonexistent/keys" }), logger)).to.throw(KeyError, /^JWT_KEYS_DIR: cannot read \/nonexistent\/keys/);
    });
  });

  describe("development key", () => {
    it("is generated once (mode 0600) and reused", () => {
      const devKeysDir = path.join(dir(), ".keys");
      const first = loadKeyRing(configFor({}), logger, { devKeysDir });
      const file = path.join(devKeysDir, "dev.pem");
      expect(fs.statSync(file).mode & 0o777).to.equal(0o600);
      expect(first.signing).to.include({ kid: "dev", alg: "ES256" });
      const second = loadKeyRing(configFor({}), logger, { devKeysDir });
      expect(second.signing.jwk).to.deep.equal(first.signing.jwk);
      expect(fs.readdirSync(devKeysDir)).to.deep.equal(["dev.pem"]);
    });

    it("is refused in production", () => {
      const config = { ...configFor({}), nodeEnv: "production" as const };
      expect(() => loadKeyRing(config, logger, { devKeysDir: dir() })).to.throw(KeyError, /^JWT_KEYS_DIR: required in production/);
    });
  });

  it("ringKey and createKeyRing reject misuse", () => {
    const k = ringKey("a", ec());
    expect(() => createKeyRing([k], "b")).to.throw(KeyError, /signing key "b" is not in the key ring/);
    expect(() => createKeyRing([k, ringKey("a", ec())], "a")).to.throw(KeyError, /duplicate key ids/);
  });
});

describe("JWKS route", () => {
  let server: http.Server;
  let base: string;
  before(async () => {
    const route = jwksRoute(createKeyRing([ringKey("k1", ec()), ringKey("k2", rsa())], "k1"));
    server = http.createServer((req, res) => {
      if (!route(req, res, new URL(req.url!, "http://x"))) {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  it("serves the public keys with a short cache lifetime", async () => {
    const res = await fetch(`${base}${JWKS_PATH}`);
    expect(res.status).to.equal(200);
    expect(res.headers.get("content-type")).to.equal("application/json");
    expect(res.headers.get("cache-control")).to.equal("public, max-age=300");
    const body = (await res.json()) as { keys: Array<Record<string, string>> };
    expect(body.keys.map((k) => k.kid)).to.deep.equal(["k1", "k2"]);
    for (const k of body.keys) expect(k).to.not.have.any.keys("d", "p", "q", "dp", "dq", "qi");
  });

  it("answers HEAD, refuses other methods, and leaves other paths alone", async () => {
    expect((await fetch(`${base}${JWKS_PATH}`, { method: "HEAD" })).status).to.equal(200);
    const post = await fetch(`${base}${JWKS_PATH}`, { method: "POST" });
    expect(post.status).to.equal(405);
    expect(post.headers.get("allow")).to.equal("GET, HEAD");
    expect((await fetch(`${base}/.well-known/other`)).status).to.equal(404);
  });
});
