// CORS for browser callers, the same for RPCs (Connect, gRPC-Web) and plain routes.
// The API authenticates with bearer tokens, not cookies, so credentials are never allowed.
import { cors as connectCors } from "@connectrpc/connect";
import type { NodeRequest, NodeResponse } from "./plain.js";

const allowMethods = [...new Set([...connectCors.allowedMethods, "GET", "POST", "PUT", "PATCH", "DELETE"])].join(", ");
const allowHeaders = [...connectCors.allowedHeaders, "Authorization", "X-Request-Id"].join(", ");
const exposeHeaders = [...connectCors.exposedHeaders, "X-Request-Id", "Retry-After"].join(", ");
const maxAgeSeconds = "7200";
/** The Vary of a response to a request that is not a preflight. */
export const CORS_VARY = "Origin";

/**
 * Returns a function that adds CORS headers for an allowed Origin and answers preflight
 * requests itself (returning true then), or undefined when no origin is configured.
 * `origins` holds exact origins ("https://app.example.com") or "*".
 */
export function createCors(origins: string[]): ((req: NodeRequest, res: NodeResponse) => boolean) | undefined {
  if (origins.length === 0) return undefined;
  const any = origins.includes("*");
  const allowed = new Set(origins.map((o) => o.toLowerCase()));

  return (req, res) => {
    const origin = req.headers.origin;
    const preflight = req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
    res.setHeader("vary", preflight ? `${CORS_VARY}, Access-Control-Request-Method, Access-Control-Request-Headers` : CORS_VARY);
    const permitted = origin !== undefined && (any || allowed.has(origin.toLowerCase()));
    if (permitted) res.setHeader("access-control-allow-origin", any ? "*" : origin);
    if (!preflight) {
      if (permitted) res.setHeader("access-control-expose-headers", exposeHeaders);
      return false;
    }
    // A refused preflight still gets 204, without the allow headers: the browser blocks the call.
    if (permitted) {
      res.setHeader("access-control-allow-methods", allowMethods);
      res.setHeader("access-control-allow-headers", allowHeaders);
      res.setHeader("access-control-max-age", maxAgeSeconds);
    }
    res.writeHead(204);
    res.end();
    return true;
  };
}
