// Plain HTTP plumbing shared by the routes that are not RPCs (health, metrics, JWKS,
// OpenAPI, the REST gateway): request/response types for HTTP/1.1 and HTTP/2 alike,
// JSON answers in the same shape as Connect errors.
import type http from "node:http";
import type http2 from "node:http2";
import type { Code, ConnectRouter, ContextValues } from "@connectrpc/connect";
import { codeToHttpStatus, codeToString } from "@connectrpc/connect/protocol-connect";

export type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
/** Either response; `writeHead` with a status and headers is the one form both take. */
export type NodeResponse = (http.ServerResponse | http2.Http2ServerResponse) & { writeHead(status: number, headers?: http.OutgoingHttpHeaders): unknown };

/**
 * A route outside the Connect router. Returns true when it handled (answered) the request,
 * "rpc" when it served it as an RPC (counted by the RPC metrics, not as plain HTTP), false to
 * let the next route try. Routes are tried after /healthz, /readyz and /metrics and before the
 * final 404.
 */
export type PlainRoute = (req: NodeRequest, res: NodeResponse, url: URL) => boolean | "rpc" | Promise<boolean | "rpc">;

/** What plain routes get to work with when they are built (see ServerDeps.plainRoutes). */
export interface PlainRouteContext {
  /** The router holding every RPC handler (`router.handlers`), interceptors included. */
  router: ConnectRouter;
  /** Context values (request meta) for a call made on behalf of this request. */
  contextValuesFor: (req: NodeRequest) => ContextValues;
}

/** UTF-8 that refuses what is not UTF-8 (a TypeError) rather than reading replacement characters. */
export const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** "ok" for success, else the Connect name of the code ("invalid_argument"). */
export function codeName(code: Code | undefined): string {
  return code === undefined ? "ok" : codeToString(code);
}

export function sendJson(res: NodeResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { ...headers, "content-type": "application/json", "content-length": String(payload.length), "cache-control": "no-store" });
  res.end(payload);
}

/** Answers with the HTTP status Connect maps the code to and `{ code, message }`. */
export function sendError(res: NodeResponse, code: Code, message: string): void {
  sendJson(res, codeToHttpStatus(code), { code: codeName(code), message });
}
