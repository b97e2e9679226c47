// GET /.well-known/jwks.json: the public keys that verify access tokens, for backends that
// check tokens themselves. The document is serialised once; the key ring does not change
// while the process runs. Caches may keep it for 5 minutes, which is why a new key must be
// published before it signs (see domain/keys.ts on rotation).
import type http from "node:http";
import type http2 from "node:http2";
import type { KeyRing } from "../../domain/keys.js";

export const JWKS_PATH = "/.well-known/jwks.json";

export function jwksRoute(
  ring: KeyRing,
): (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse, url: URL) => boolean {
  const body = Buffer.from(JSON.stringify(ring.jwks));
  const headers = {
    "content-type": "application/json",
    "content-length": String(body.length),
    "cache-control": "public, max-age=300",
    "x-content-type-options": "nosniff",
  };
  return (req, res, url) => {
    if (url.pathname !== JWKS_PATH) return false;
    if (req.method === "GET" || req.method === "HEAD") {
      for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
      res.statusCode = 200;
      if (req.method === "GET") res.end(body);
      else res.end();
    } else {
      res.setHeader("allow", "GET, HEAD");
      res.statusCode = 405;
      res.end();
    }
    return true;
  };
}
