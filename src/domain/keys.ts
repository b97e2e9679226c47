// Signing keys of access tokens (DESIGN §4, §8).
//
// JWT_KEYS_DIR holds PEM private keys (unencrypted PKCS#8, SEC1 or PKCS#1), one per file
// named `<kid>.pem`: EC P-256 keys sign ES256, RSA keys of at least 2048 bits sign RS256;
// any other file or key stops the start with a message naming the file. Hidden entries
// and sub-directories are skipped (editor files, Kubernetes' `..data` links).
//
// Every key verifies; one key signs: the one named by JWT_SIGNING_KID when it is set,
// otherwise the newest file (latest mtime, equal mtimes: the name that sorts last).
// Rotation without failed calls, with several instances and JWKS caches (5 min):
//   1. add the new key file everywhere while JWT_SIGNING_KID still names the old key,
//   2. after the JWKS cache time, point JWT_SIGNING_KID at the new key,
//   3. remove the old file once the longest-lived token it signed has expired (service
//      tokens: 30 days by default).
// Without JWT_SIGNING_KID the newest file signs at once, and mtimes can differ between
// machines (a copy resets them): multi-instance deployments should set it.
//
// Without JWT_KEYS_DIR (development and test only) one ES256 key is generated into
// `.keys/dev.pem` at the project root (git-ignored, mode 0600) and reused afterwards.
//
// KeyObjects and public JWKs are built here, once; signing and verifying never parse PEM.
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject, type webcrypto } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { PROJECT_ROOT } from "../project-root.js";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";

export type SigningAlg = "ES256" | "RS256";

/** A public key as published in the JWKS document. */
export interface PublicJwk extends webcrypto.JsonWebKey {
  kid: string;
  alg: SigningAlg;
  use: "sig";
}

export interface RingKey {
  readonly kid: string;
  /** The only algorithm this key signs and verifies. */
  readonly alg: SigningAlg;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly jwk: PublicJwk;
}

export interface KeyRing {
  /** The key that signs new tokens. */
  readonly signing: RingKey;
  /** A verification key by id; undefined for ids the ring does not hold. */
  get(kid: string): RingKey | undefined;
  /** The JWKS document: every key of the ring, public parts only. */
  readonly jwks: { readonly keys: readonly PublicJwk[] };
}

export class KeyError extends Error {
  override name = "KeyError";
}

/** Where development and test keep their generated key (the project's `.keys/`). */
export const DEV_KEYS_DIR = path.join(PROJECT_ROOT, ".keys");
const DEV_KEY_FILE = "dev.pem";
const KID = /^[A-Za-z0-9._-]{1,64}$/;
const MIN_RSA_BITS = 2048;

function algorithmOf(key: KeyObject): SigningAlg {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case "ec":
      if (details.namedCurve === "prime256v1") return "ES256";
      throw new KeyError(`EC curve ${details.namedCurve ?? "(unknown)"} is not supported (use P-256 for ES256)`);
    case "rsa":
      if ((details.modulusLength ?? 0) >= MIN_RSA_BITS) return "RS256";
      throw new KeyError(`RSA key of ${details.modulusLength ?? "unknown"} bits is too short (at least ${MIN_RSA_BITS} for RS256)`);
    default:
      throw new KeyError(`${key.asymmetricKeyType ?? "unknown"} keys are not supported (use EC P-256 or RSA of at least ${MIN_RSA_BITS} bits)`);
  }
}

/** One key of the ring, built from its private key. Throws KeyError for unusable keys. */
export function ringKey(kid: string, privateKey: KeyObject): RingKey {
  if (!KID.test(kid)) throw new KeyError(`key id "${kid}" must be 1-64 letters, digits, ".", "_" or "-"`);
  if (privateKey.type !== "private") throw new KeyError(`key "${kid}" is not a private key`);
  const alg = algorithmOf(privateKey);
  const publicKey = createPublicKey(privateKey);
  const jwk: PublicJwk = Object.freeze({ ...publicKey.export({ format: "jwk" }), kid, alg, use: "sig" as const });
  return Object.freeze({ kid, alg, privateKey, publicKey, jwk });
}

export function createKeyRing(keys: readonly RingKey[], signingKid: string): KeyRing {
  const byKid = new Map(keys.map((k) => [k.kid, k]));
  if (byKid.size !== keys.length) throw new KeyError("duplicate key ids in the key ring");
  const signing = byKid.get(signingKid);
  if (!signing) throw new KeyError(`signing key "${signingKid}" is not in the key ring (${[...byKid.keys()].join(", ") || "empty"})`);
  const jwks = Object.freeze({ keys: Object.freeze(keys.map((k) => k.jwk)) });
  return Object.freeze({ signing, jwks, get: (kid: string) => byKid.get(kid) });
}

interface KeyFile {
  key: RingKey;
  mtimeMs: number;
}

function readKeyDir(dir: string): KeyFile[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    throw new KeyError(`JWT_KEYS_DIR: cannot read ${dir}: ${(e as Error).message}`);
  }
  const files: KeyFile[] = [];
  for (const name of names.sort()) {
    if (name.startsWith(".")) continue;
    const file = path.join(dir, name);
    const stat = fs.statSync(file); // follows symbolic links, as mounted secrets use them
    if (!stat.isFile()) continue;
    if (!name.endsWith(".pem")) throw new KeyError(`${file}: not a .pem file (JWT_KEYS_DIR holds only <kid>.pem private keys)`);
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey(fs.readFileSync(file));
    } catch {
      throw new KeyError(`${file}: not an unencrypted PEM private key`);
    }
    try {
      files.push({ key: ringKey(name.slice(0, -".pem".length), privateKey), mtimeMs: stat.mtimeMs });
    } catch (e) {
      throw new KeyError(`${file}: ${(e as Error).message}`);
    }
  }
  if (!files.length) throw new KeyError(`JWT_KEYS_DIR: no <kid>.pem private key in ${dir}`);
  return files;
}

/** Latest mtime; on equal mtimes the later name (files come sorted by name). */
function newest(files: KeyFile[]): KeyFile {
  return files.reduce((a, b) => (b.mtimeMs >= a.mtimeMs ? b : a));
}

function ensureDevKey(dir: string, logger: Logger): void {
  const file = path.join(dir, DEV_KEY_FILE);
  if (fs.existsSync(file)) return;
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  // Written aside, then linked into place: a process starting at the same moment sees
  // either no key or a complete one, and exactly one generated key wins.
  const tmp = path.join(dir, `.${DEV_KEY_FILE}.${randomBytes(6).toString("hex")}.tmp`);
  fs.writeFileSync(tmp, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600, flag: "wx" });
  try {
    fs.linkSync(tmp, file);
    logger.warn({ file }, "generated a development signing key (set JWT_KEYS_DIR to use your own keys)");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

export interface LoadKeyRingOptions {
  /** Folder of the generated development key (tests point it elsewhere). */
  devKeysDir?: string;
}

/** Builds the key ring at start-up (synchronous file access). Throws KeyError with a message naming the culprit. */
export function loadKeyRing(config: Pick<Config, "nodeEnv" | "jwt">, logger: Logger, options: LoadKeyRingOptions = {}): KeyRing {
  let dir = config.jwt.keysDir;
  if (!dir) {
    // loadConfig refuses this already; repeated because a generated key in production would
    // sign tokens that no other instance, and no restart, can verify.
    if (config.nodeEnv === "production") throw new KeyError("JWT_KEYS_DIR: required in production (generated keys are refused)");
    dir = options.devKeysDir ?? DEV_KEYS_DIR;
    ensureDevKey(dir, logger);
  }
  const files = readKeyDir(dir);
  const signingKid = config.jwt.signingKid ?? newest(files).key.kid;
  if (!files.some((f) => f.key.kid === signingKid)) throw new KeyError(`JWT_SIGNING_KID: no ${signingKid}.pem in ${dir}`);
  const ring = createKeyRing(
    files.map((f) => f.key),
    signingKid,
  );
  logger.info({ dir, kids: files.map((f) => f.key.kid), signingKid, alg: ring.signing.alg }, "access-token keys loaded");
  return ring;
}
