// The REST paths of DESIGN §2, transcoded from the methods' google.api.http annotations (no
// hand-written route table). Each call runs on the server's call engine (unary/calls.ts) like a
// Connect or gRPC call, with every interceptor and the same shutdown and client-gone handling;
// the request message comes from path, query and body (rest/request.ts), the answer straight from
// the response message: snake_case fields, all present (rest/response.ts); errors as { code,
// message, details } with Connect's HTTP status for the code (rest/errors.ts). The gateway's own
// answers: 404 (unknown path under /api/), 405 with Allow, 400 (malformed JSON, bad path or query
// value), 413 (body over maxBodyBytes), 415 (body not JSON); OPTIONS on a known path 204 with
// Allow (CORS preflights are answered before); HEAD runs the GET.
import type http2 from "node:http2";
import type { DescService, JsonValue, Message } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues } from "@connectrpc/connect";
import { codeToHttpStatus } from "@connectrpc/connect/protocol-connect";
import type { RequestMeta } from "../../domain/caller.js";
import type { Logger } from "../../logger.js";
import { contextValuesOf } from "../calls/interceptors.js";
import { nodeExchange, streamExchange, type HttpExchange } from "../http/exchange.js";
import { readBody } from "../http/body.js";
import { sendJson, strictUtf8, type NodeRequest, type NodeResponse, type PlainRoute } from "../http/plain.js";
import type { UnaryCalls, UnaryMethod } from "../unary/calls.js";
import { HttpUnaryCall } from "../unary/http-call.js";
import { restBindings, type RestBinding } from "./bindings.js";
import { restErrorBody } from "./errors.js";
import { createRequestBuilder, type RequestBuilder } from "./request.js";
import { restResponseBody } from "./response.js";

export interface RestGatewayOptions {
  /** The unary methods the server serves, with their interceptors. */
  calls: UnaryCalls;
  /** The context values the server gives a call of this request (client IP, user agent, request id). */
  contextValuesFor: (req: NodeRequest) => ContextValues;
  /** Services whose annotated methods get REST paths; each must be registered with the server. */
  services: readonly DescService[];
  maxBodyBytes: number;
  logger: Logger;
}

interface Route {
  binding: RestBinding;
  method: UnaryMethod;
  build: RequestBuilder;
}

/**
 * An answer the gateway gives with a status other than Connect's for the code. (Told apart by
 * its restStatus: ConnectError's own instanceof takes any ConnectError for any subclass.)
 */
class Rejection extends ConnectError {
  constructor(
    readonly restStatus: number,
    error: ConnectError,
  ) {
    super(error.rawMessage, error.code, error.metadata);
    this.details.push(...error.details);
  }
}

function httpStatusOf(error: ConnectError): number {
  const { restStatus } = error as Partial<Rejection>;
  return typeof restStatus === "number" ? restStatus : codeToHttpStatus(error.code);
}

/** Paths under this prefix belong to the REST API: an unknown one is answered with a JSON 404. */
const apiPrefix = "/api/";
const jsonContentType = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/** One REST call: the request message from path, query and body; the answer as REST JSON. */
class RestCall extends HttpUnaryCall<Buffer> {
  readonly protocolName = "rest";

  constructor(
    private readonly route: Route,
    private readonly pathValues: string[],
    private readonly query: URLSearchParams,
    exchange: HttpExchange,
    values: ContextValues,
    private readonly maxBodyBytes: number,
  ) {
    super(route.method.spec, exchange, values, undefined);
  }

  async readInput(): Promise<Message> {
    const body = this.route.binding.body ? await readJsonBody(this.exchange, this.maxBodyBytes) : undefined;
    return this.route.build({ body, pathValues: this.pathValues, query: this.query });
  }

  encode(output: Message): Buffer {
    return Buffer.from(JSON.stringify(restResponseBody(this.route.binding, output)));
  }

  protected send(body: Buffer | undefined, error: ConnectError | undefined): ConnectError | undefined {
    let status = 200;
    if (error) {
      status = httpStatusOf(error);
      body = Buffer.from(JSON.stringify(restErrorBody(error)));
    }
    body ??= Buffer.alloc(0);
    const head = this.responseHead(error);
    head["content-type"] = "application/json";
    head["content-length"] = String(body.length);
    head["cache-control"] = "no-store";
    // An oversized body is left unread: close the HTTP/1.1 connection rather than drain it.
    if (status === 413 && this.exchange.http1) head.connection = "close";
    return this.write(status, head, body);
  }
}

export interface RestGateway {
  /** The plain route: answers every path under /api/ ("rpc" for a call; 404, 405 and OPTIONS itself), false for others. */
  route: PlainRoute;
  /**
   * Serves a REST call on an HTTP/2 stream and returns true, when the path and method name one
   * (HEAD and OPTIONS, unknown paths and methods stay with `route`). `meta` reads the request
   * meta; `head`: headers every response carries besides X-Request-Id (e.g. Vary).
   */
  serveStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, meta: () => RequestMeta, head: Readonly<Record<string, string>>): boolean;
}

export function createRestGateway(options: RestGatewayOptions): RestGateway {
  const { calls, contextValuesFor, maxBodyBytes } = options;
  const logger = options.logger.child({ component: "rest-gateway" });
  const routes: Route[] = restBindings(options.services)
    .map((binding) => {
      const method = calls.of(binding.method);
      if (!method) throw new Error(`${binding.method}: has a REST binding but is not served as a unary method`);
      return { binding, method, build: createRequestBuilder(binding) };
    })
    // When templates overlap (/users/me and /users/{id}), the more literal one wins.
    .sort((a, b) => b.binding.template.literalSegments - a.binding.template.literalSegments);
  // Paths without variables are looked up; only the others are matched one by one.
  const literal = new Map<string, Route[]>();
  const templated: Route[] = [];
  for (const route of routes) {
    const { template } = route.binding;
    if (template.variables.length === 0 && !/[*:]/.test(template.source)) literal.set(template.source, [...(literal.get(template.source) ?? []), route]);
    else templated.push(route);
  }
  const NO_VALUES: string[] = [];

  /** Every route whose template matches the path, the more literal first. */
  const matching = (pathname: string): Array<{ route: Route; pathValues: string[] }> => {
    const matches = (literal.get(pathname) ?? []).map((route) => ({ route, pathValues: NO_VALUES }));
    for (const route of templated) {
      const pathValues = route.binding.template.match(pathname);
      if (pathValues) matches.push({ route, pathValues });
    }
    return matches;
  };

  const route: PlainRoute = async (req, res, url) => {
    const pathname = url.pathname;
    const matches = matching(pathname);
    if (!matches.length) {
      if (!pathname.startsWith(apiPrefix)) return false;
      reject(req, res, new Rejection(404, new ConnectError(`No route for ${req.method} ${pathname}`, Code.NotFound)));
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
      } else reject(req, res, new Rejection(405, new ConnectError(`${req.method} is not allowed on ${pathname} (allowed: ${allow})`, Code.Unimplemented)), { allow });
      return true;
    }
    await calls.run(new RestCall(match.route, match.pathValues, url.searchParams, nodeExchange(req, res), contextValuesFor(req), maxBodyBytes), match.route.method);
    return "rpc";
  };

  // Answers for requests that name no method (hence never observed as calls): noted here.
  function reject(req: NodeRequest, res: NodeResponse, rejection: Rejection, headers: Record<string, string> = {}): void {
    logger.debug({ method: req.method, path: req.url, status: rejection.restStatus, code: rejection.code, message: rejection.rawMessage }, "REST request rejected");
    sendJson(res, rejection.restStatus, restErrorBody(rejection), headers);
  }

  return {
    route,
    serveStream(stream, headers, meta, head) {
      const target = headers[":path"];
      if (!target?.startsWith(apiPrefix)) return false;
      const method = headers[":method"];
      const query = target.indexOf("?");
      const pathname = query < 0 ? target : target.slice(0, query);
      const match = matching(pathname).find((m) => m.route.binding.verb === method);
      if (!match) return false;
      const search = new URLSearchParams(query < 0 ? "" : target.slice(query + 1));
      const m = meta();
      void calls.run(new RestCall(match.route, match.pathValues, search, streamExchange(stream, headers, m.requestId, head), contextValuesOf(m), maxBodyBytes), match.route.method);
      return true;
    },
  };
}

async function readJsonBody(exchange: HttpExchange, limit: number): Promise<JsonValue | undefined> {
  const type = exchange.headers["content-type"];
  if (type !== undefined && !jsonContentType.test(type)) {
    throw new Rejection(415, new ConnectError(`content-type must be application/json, got "${type}"`, Code.InvalidArgument));
  }
  let text: string;
  try {
    text = decodeUtf8(await readBody(exchange.body, { limit, declared: exchange.headers["content-length"] })).trim();
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

