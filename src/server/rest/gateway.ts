// The REST paths of DESIGN §2, transcoded from the methods' google.api.http annotations
// (no hand-written route table). Each call is run through the Connect router's own handler
// for the method, as a Connect unary JSON request carrying the caller's Authorization,
// User-Agent and X-Request-Id and the server's context values, so every interceptor
// (request meta, logging, metrics, error mapping, auth) applies exactly as for Connect and
// gRPC callers. The answer is reshaped for REST: snake_case fields, all present
// (rest/response.ts); errors as { code, message, details } with Connect's HTTP status for
// the code (rest/errors.ts).
//
// Statuses the gateway answers itself: 404 (unknown path under /api/), 405 (known path,
// other method; with Allow), 400 (malformed JSON, bad path or query value), 413 (body over
// maxBodyBytes), 415 (body not JSON). OPTIONS on a known path answers 204 with Allow (CORS
// preflights are answered by the server before plain routes run); HEAD runs the GET.
import { fromJson, toJson, type DescService, type JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type ContextValues } from "@connectrpc/connect";
import { universalRequestFromNodeRequest } from "@connectrpc/connect-node";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import { codeToHttpStatus } from "@connectrpc/connect/protocol-connect";
import type { Logger } from "../../logger.js";
import { restBindings, type RestBinding } from "./bindings.js";
import { errorFromConnectBody, restErrorBody } from "./errors.js";
import { readBody, sendJson, strictUtf8, type NodeRequest, type NodeResponse, type PlainRoute } from "../http/plain.js";
import { createRequestBuilder, type RequestBuilder } from "./request.js";
import { restResponseBody } from "./response.js";

export interface RestGatewayOptions {
  /** The router the Connect routes are served from, with its interceptors. */
  router: ConnectRouter;
  /** Services whose annotated methods get REST paths; each must be registered on the router. */
  services: readonly DescService[];
  /** The context values the server gives a call of this request (client IP, user agent, request id). */
  contextValuesFor: (req: NodeRequest) => ContextValues;
  maxBodyBytes: number;
  logger: Logger;
}

interface Route {
  binding: RestBinding;
  handler: UniversalHandler;
  build: RequestBuilder;
}

/** An answer the gateway gives itself, with a status other than Connect's for the code. */
class Rejection extends Error {
  constructor(
    readonly status: number,
    readonly error: ConnectError,
  ) {
    super(error.message);
  }
}

/** Paths under this prefix belong to the REST API: an unknown one is answered with a JSON 404. */
const apiPrefix = "/api/";
/** Request headers passed on to the call; the rest of the caller's headers are not the RPC's business. */
const forwardedHeaders = ["authorization", "user-agent", "x-request-id"];
/** Response headers that describe the Connect body rather than the REST one. */
const connectBodyHeaders = new Set(["content-type", "content-length", "content-encoding"]);
const jsonContentType = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

export function createRestGateway(options: RestGatewayOptions): PlainRoute {
  const { contextValuesFor, maxBodyBytes } = options;
  const logger = options.logger.child({ component: "rest-gateway" });
  const handlers = new Map(options.router.handlers.map((h) => [h.method, h]));
  const routes: Route[] = restBindings(options.services)
    .map((binding) => {
      const handler = handlers.get(binding.method);
      if (!handler?.protocolNames.includes("connect")) {
        throw new Error(`${binding.method}: has a REST binding but no Connect handler on the router`);
      }
      return { binding, handler, build: createRequestBuilder(binding) };
    })
    // When templates overlap (/users/me and /users/{id}), the more literal one wins.
    .sort((a, b) => b.binding.template.literalSegments - a.binding.template.literalSegments);

  return async (req, res, url) => {
    const matches = routes.flatMap((route) => {
      const pathValues = route.binding.template.match(url.pathname);
      return pathValues ? [{ route, pathValues }] : [];
    });
    if (!matches.length) {
      if (!url.pathname.startsWith(apiPrefix)) return false;
      reject(req, res, new Rejection(404, new ConnectError(`No route for ${req.method} ${url.pathname}`, Code.NotFound)));
      return true;
    }
    const verb = req.method === "HEAD" ? "GET" : req.method;
    const match = matches.find((m) => m.route.binding.verb === verb);
    if (!match) {
      const verbs = new Set(matches.map((m) => m.route.binding.verb));
      if (verbs.has("GET")) verbs.add("HEAD");
      const allow = [...verbs, "OPTIONS"].join(", ");
      if (req.method === "OPTIONS") {
        res.writeHead(204, { allow });
        res.end();
      } else reject(req, res, new Rejection(405, new ConnectError(`${req.method} is not allowed on ${url.pathname} (allowed: ${allow})`, Code.Unimplemented)), { allow });
      return true;
    }
    await serve(match.route, match.pathValues, req, res, url);
    return true;
  };

  async function serve({ binding, handler, build }: Route, pathValues: string[], req: NodeRequest, res: NodeResponse, url: URL): Promise<void> {
    try {
      const body = binding.body ? await readJsonBody(req, maxBodyBytes) : undefined;
      const input = build({ body, pathValues, query: url.searchParams });
      const call = universalRequestFromNodeRequest(req, res, toJson(binding.method.input, input), contextValuesFor(req));
      const response = await handler({ ...call, method: "POST", url: new URL(handler.requestPath, call.url).toString(), header: connectRequestHeaders(req) });
      const bytes = await readAll(response.body);
      const headers = restResponseHeaders(response.header);
      if (response.status === 200) {
        const output = fromJson(binding.method.output, JSON.parse(bytes.toString("utf8")) as JsonValue, { ignoreUnknownFields: true });
        sendJson(res, 200, restResponseBody(binding, output), headers);
      } else {
        const error = errorFromConnectBody(response.status, bytes);
        sendJson(res, codeToHttpStatus(error.code), restErrorBody(error), headers);
      }
    } catch (e) {
      if (e instanceof Rejection || (e instanceof ConnectError && e.code !== Code.Internal)) {
        reject(req, res, e);
        return;
      }
      logger.error({ err: e, rpc: binding.method.toString() }, "REST call failed");
      reject(req, res, new ConnectError("internal error", Code.Internal));
    }
  }

  // Answers that never reached the interceptors, hence not in their logs: noted here.
  function reject(req: NodeRequest, res: NodeResponse, rejection: Rejection | ConnectError, headers: Record<string, string> = {}): void {
    const [status, error] = rejection instanceof Rejection ? [rejection.status, rejection.error] : [codeToHttpStatus(rejection.code), rejection];
    logger.debug({ method: req.method, path: req.url, status, code: error.code, message: error.rawMessage }, "REST request rejected");
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // An oversized body is left unread: close the HTTP/1.1 connection rather than drain it.
    if (status === 413 && req.httpVersionMajor === 1) headers = { ...headers, connection: "close" };
    sendJson(res, status, restErrorBody(error), headers);
  }
}

async function readJsonBody(req: NodeRequest, limit: number): Promise<JsonValue | undefined> {
  const type = req.headers["content-type"];
  if (type !== undefined && !jsonContentType.test(type)) {
    throw new Rejection(415, new ConnectError(`content-type must be application/json, got "${type}"`, Code.InvalidArgument));
  }
  let text: string;
  try {
    text = decodeUtf8(await readBody(req, limit)).trim();
  } catch (e) {
    // readBody refuses an oversized body with resource_exhausted, as Connect does. Answered
    // 413, not the 429 Connect maps the code to: the same body can never succeed, and HTTP
    // clients (the apps' retry logic included) read 429 as "slow down and try again".
    if (e instanceof ConnectError && e.code === Code.ResourceExhausted) throw new Rejection(413, e);
    throw e;
  }
  if (text === "") return undefined;
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    throw new ConnectError("request body is not valid JSON", Code.InvalidArgument);
  }
}

/** JSON must be UTF-8 (RFC 8259): other bytes are refused, not read as replacement characters. */
function decodeUtf8(bytes: Buffer): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new ConnectError("request body is not valid UTF-8", Code.InvalidArgument);
  }
}

function connectRequestHeaders(req: NodeRequest): Headers {
  const header = new Headers({ "content-type": "application/json", "connect-protocol-version": "1" });
  for (const name of forwardedHeaders) {
    const value = req.headers[name];
    if (typeof value === "string") header.set(name, value);
  }
  return header;
}

function restResponseHeaders(header: Headers | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  header?.forEach((value, name) => {
    if (!connectBodyHeaders.has(name)) out[name] = value;
  });
  return out;
}

async function readAll(body: AsyncIterable<Uint8Array> | undefined): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  if (body) for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}
