// Answers the server gives itself, before (or instead of) connect-node, where connect-node's own
// answer is not what the protocol's peers read:
// - a gRPC or gRPC-Web call to an unknown method: HTTP 200 with grpc-status 12 (unimplemented)
//   in a trailers-only response, not connect-node's HTTP 404 with a JSON body (which C-core
//   reports as a metadata parse error);
// - a grpc-encoding (gRPC) or Content-Encoding (Connect) the server cannot decode: unimplemented
//   with grpc-accept-encoding or Accept-Encoding (connect-node answers unimplemented but drops
//   those headers, protocol headers, from the error's metadata);
// - an HTTP method an RPC path does not take: 405 with Allow (RFC 9110 §15.5.6);
// - a field section over the size the server serves (HTTP/2): 431, or resource_exhausted for gRPC;
// - a request message that does not decode: invalid_argument (connect-node says internal).
import type http2 from "node:http2";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { sendJson, type NodeRequest, type NodeResponse } from "./plain.js";

/** application/grpc, application/grpc+proto, application/grpc-web+json, …: a gRPC or gRPC-Web request. */
const grpcContentType = /^application\/grpc(?:-web(?:-text)?)?(?:\+[\w.-]+)?\s*(?:;|$)/i;

export function isGrpcRequest(headers: { "content-type"?: string | undefined }): boolean {
  const type = headers["content-type"];
  return type !== undefined && grpcContentType.test(type);
}

/**
 * The headers of a trailers-only gRPC answer (status and message in the only HEADERS frame; a
 * gRPC-Web peer reads them from the response headers alike), without :status.
 */
function grpcStatusHeaders(contentType: string, error: ConnectError): Record<string, string> {
  const headers: Record<string, string> = { "content-type": contentType.split(";", 1)[0]!.trim() };
  error.metadata.forEach((value, name) => (headers[name] = value));
  headers["grpc-status"] = String(error.code);
  headers["grpc-message"] = encodeURIComponent(error.rawMessage);
  return headers;
}

/**
 * Answers a gRPC or gRPC-Web request with a trailers-only response. Headers are set and end() is
 * called without writeHead(), so that node's HTTP/2 layer sends one HEADERS frame with END_STREAM.
 */
export function sendGrpcError(req: NodeRequest, res: NodeResponse, error: ConnectError): void {
  res.statusCode = 200;
  for (const [name, value] of Object.entries(grpcStatusHeaders(req.headers["content-type"] ?? "application/grpc", error))) res.setHeader(name, value);
  res.end();
  // What the client still sends is read and dropped.
  req.resume();
}

/** "/pkg.Service/Method" → its service and method; undefined for any other path. */
function rpcPath(path: string): { service: string; method: string } | undefined {
  const m = /^\/([^/?]+)\/([^/?]+)(?:\?|$)/.exec(path);
  return m ? { service: m[1]!, method: m[2]! } : undefined;
}

export interface PreRoutingOptions {
  /** Every RPC the router serves. */
  handlers: readonly UniversalHandler[];
  /** The grpc-encoding names the server decodes ("identity" is always accepted). */
  encodings: readonly string[];
}

/**
 * What the server checks before connect-node sees a request: returns a function that answers the
 * request (and returns true) when it is one of the cases above, or returns false.
 */
export function createPreRouting(opts: PreRoutingOptions): (req: NodeRequest, res: NodeResponse) => boolean {
  const allowed = new Map(opts.handlers.map((h) => [h.requestPath, h.allowedMethods]));
  const services = new Set(opts.handlers.map((h) => h.service.typeName));
  const accepted = new Set(["identity", ...opts.encodings]);
  const acceptEncoding = opts.encodings.join(",");

  /** The encoding a header names when the server cannot decode it; undefined when absent or accepted. */
  const unsupported = (header: string | string[] | undefined): string | undefined => {
    const encoding = Array.isArray(header) ? header.join(",") : header;
    return encoding === undefined || accepted.has(encoding) ? undefined : encoding;
  };
  const unknownCompression = (encoding: string) => `unknown compression "${encoding}": supported encodings are ${acceptEncoding}`;

  return (req, res) => {
    const path = (req.url ?? "/").split("?", 1)[0]!;
    const methods = allowed.get(path);
    if (isGrpcRequest(req.headers)) {
      if (!methods) {
        const rpc = rpcPath(path);
        const message = !rpc ? `unknown path ${path}` : services.has(rpc.service) ? `unknown method ${rpc.method} for service ${rpc.service}` : `unknown service ${rpc.service}`;
        sendGrpcError(req, res, new ConnectError(message, Code.Unimplemented));
        return true;
      }
      const encoding = unsupported(req.headers["grpc-encoding"]);
      if (encoding !== undefined) {
        sendGrpcError(req, res, new ConnectError(unknownCompression(encoding), Code.Unimplemented, { "grpc-accept-encoding": acceptEncoding }));
        return true;
      }
    } else if (methods) {
      // Connect unary: the body's Content-Encoding, answered with Accept-Encoding.
      const encoding = unsupported(req.headers["content-encoding"]);
      if (encoding !== undefined) {
        sendJson(res, 501, { code: codeToString(Code.Unimplemented), message: unknownCompression(encoding) }, { "accept-encoding": acceptEncoding });
        req.resume();
        return true;
      }
    }
    if (methods && !methods.includes(req.method ?? "")) {
      const allow = methods.join(", ");
      sendJson(res, 405, { code: codeToString(Code.Unimplemented), message: `${req.method} is not allowed on ${path} (allowed: ${allow})`, details: [] }, { allow });
      req.resume();
      return true;
    }
    return false;
  };
}

/** The size of an HTTP/2 field section as RFC 9113 §6.5.2 counts it: name + value + 32 per field. */
export function fieldSectionSize(headers: http2.IncomingHttpHeaders): number {
  // Runs for every stream: no allocation.
  let size = 0;
  for (const name in headers) {
    const value = headers[name];
    if (typeof value === "string") size += name.length + value.length + 32;
    else if (Array.isArray(value)) for (const v of value) size += name.length + v.length + 32;
  }
  return size;
}

/**
 * Answers an HTTP/2 request whose field section is over `limit`: 431 with a JSON error, or for
 * gRPC and gRPC-Web a trailers-only resource_exhausted. Node resets streams over the advertised
 * SETTINGS_MAX_HEADER_LIST_SIZE itself, before any code sees them; this answers those between
 * the limit served and that one (listener.ts).
 */
export function answerHeadersTooLarge(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, limit: number): void {
  const error = new ConnectError(`request headers larger than ${limit} bytes`, Code.ResourceExhausted);
  stream.on("error", () => {});
  if (isGrpcRequest(headers)) {
    stream.respond({ ":status": 200, ...grpcStatusHeaders(headers["content-type"]!, error) }, { endStream: true });
  } else {
    const body = Buffer.from(JSON.stringify({ code: codeToString(error.code), message: error.rawMessage, details: [] }));
    stream.respond({ ":status": 431, "content-type": "application/json", "content-length": String(body.length), "cache-control": "no-store" });
    stream.end(body);
  }
  stream.resume();
}

/** The error connect's binary serialization throws for a request message that does not decode (code internal). */
export function isUndecodableMessage(err: unknown): err is ConnectError {
  return err instanceof ConnectError && err.code === Code.Internal && err.rawMessage.startsWith("parse binary: ");
}

/**
 * connect-node reports a request message that does not decode (bad protobuf, invalid UTF-8 in a
 * string field) as internal ("parse binary: …"): the client's fault, so invalid_argument. Called
 * from the request gate, before the observer's: connect-node aborts the call's signal with the
 * error before it writes the status, and this listener re-codes the error in between.
 */
export function undecodableAsInvalidArgument(ctx: HandlerContext): void {
  ctx.signal.addEventListener(
    "abort",
    () => {
      const reason: unknown = ctx.signal.reason;
      if (isUndecodableMessage(reason)) {
        (reason as { code: Code }).code = Code.InvalidArgument;
      }
    },
    { once: true },
  );
}
