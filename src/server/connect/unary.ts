// Unary Connect calls (the apps' protocol: JSON or binary, HTTP/1.1 or HTTP/2) on the server's
// own call engine (unary/calls.ts) rather than connect-node's handler (bench/RESULTS.md, S25).
// Taken: POST to a unary method served there with a unary Connect content type and a
// Content-Encoding the server decodes; everything else stays with connect-node (GET, streaming,
// gRPC-Web, unknown paths). The protocol's pieces are connect's own: content-type and
// Connect-Timeout-Ms parsing, compression negotiation (gzip, br, both ways), serialization with
// the server's JSON options, error JSON. CORS and X-Request-Id come from the exchange (server.ts).
import type { IncomingHttpHeaders } from "node:http";
import type http2 from "node:http2";
import type { DescMessage, JsonReadOptions, JsonWriteOptions, Message } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues } from "@connectrpc/connect";
import { compressionNegotiate, createMethodSerializationLookup, type Compression, type MethodSerializationLookup } from "@connectrpc/connect/protocol";
import {
  codeToHttpStatus,
  contentTypeUnaryJson,
  contentTypeUnaryProto,
  errorToJsonBytes,
  parseContentType,
  parseTimeout,
} from "@connectrpc/connect/protocol-connect";
import type { RequestMeta } from "../../domain/caller.js";
import { contextValuesFor, contextValuesOf } from "../calls/interceptors.js";
import { headerValue, nodeExchange, streamExchange, type HttpExchange } from "../http/exchange.js";
import { isUndecodableMessage } from "../http/protocol-answers.js";
import type { NodeRequest, NodeResponse } from "../http/plain.js";
import { readBody } from "../http/body.js";
import type { UnarySpec } from "../unary/call.js";
import type { UnaryCalls, UnaryMethod } from "../unary/calls.js";
import { HttpUnaryCall } from "../unary/http-call.js";

export interface ConnectUnaryOptions {
  calls: UnaryCalls;
  /** Compressions the server decodes and encodes, in order of preference. */
  acceptCompression: Compression[];
  /** Responses this large or larger are compressed when the client accepts it. */
  compressMinBytes: number;
  readMaxBytes: number;
  jsonOptions: Partial<JsonReadOptions & JsonWriteOptions>;
}

export interface ConnectUnaryPath {
  /** Serves the request if it is a call this path takes (see the top of this file) and returns true. */
  serve(req: NodeRequest, res: NodeResponse): boolean;
  /**
   * The same on an HTTP/2 stream (requests without an Origin: CORS stays with the other way).
   * `meta` reads the request meta; `head`: headers every response carries besides X-Request-Id (e.g. Vary).
   */
  serveStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, meta: () => RequestMeta, head: Readonly<Record<string, string>>): boolean;
}

const JSON_HEADER = Object.freeze({ "content-type": contentTypeUnaryJson });
const PROTO_HEADER = Object.freeze({ "content-type": contentTypeUnaryProto });

interface Protocol {
  serialization: MethodSerializationLookup<DescMessage, DescMessage>;
  options: ConnectUnaryOptions;
}

class ConnectCall extends HttpUnaryCall<Uint8Array> {
  readonly protocolName = "connect";
  private responseEncoding?: string;

  constructor(
    spec: UnarySpec,
    exchange: HttpExchange,
    values: ContextValues,
    private readonly binary: boolean,
    private readonly timeout: ReturnType<typeof parseTimeout>,
    private readonly compression: ReturnType<typeof compressionNegotiate>,
    private readonly protocol: Protocol,
  ) {
    super(spec, exchange, values, timeout.timeoutMs, binary ? PROTO_HEADER : JSON_HEADER);
  }

  async readInput(readMaxBytes: number): Promise<Message> {
    // In connect's order: compression, then the timeout, then the body.
    if (this.compression.error) throw this.compression.error;
    if (this.timeout.error) throw this.timeout.error;
    let bytes: Uint8Array = await readBody(this.exchange.body, { limit: readMaxBytes, declared: this.exchange.headers["content-length"] });
    if (this.compression.request) bytes = await this.compression.request.decompress(bytes, readMaxBytes);
    try {
      return this.protocol.serialization.getI(this.binary).parse(bytes);
    } catch (err) {
      // An undecodable binary message is the client's fault (connect says internal; see http/protocol-answers.ts).
      if (isUndecodableMessage(err)) throw new ConnectError(err.rawMessage, Code.InvalidArgument);
      throw err;
    }
  }

  encode(output: Message): Uint8Array | Promise<Uint8Array> {
    const bytes = this.protocol.serialization.getO(this.binary).serialize(output);
    const compression = this.compression.response;
    if (!compression || bytes.byteLength < this.protocol.options.compressMinBytes) return bytes;
    return compression.compress(bytes).then((compressed) => {
      this.responseEncoding = compression.name;
      return compressed;
    });
  }

  /** The status, the headers (trailers as trailer-* headers) and the message or the error JSON. */
  protected send(body: Uint8Array | undefined, error: ConnectError | undefined): ConnectError | undefined {
    let status = 200;
    if (error) {
      status = codeToHttpStatus(error.code);
      this.responseHeader.set("content-type", contentTypeUnaryJson);
      body = errorToJsonBytes(error, this.protocol.options.jsonOptions);
      this.responseEncoding = undefined;
    }
    body ??= new Uint8Array(0);
    const head = this.responseHead(error);
    if (this.responseEncoding) head["content-encoding"] = this.responseEncoding;
    head["content-length"] = String(body.byteLength);
    return this.write(status, head, body);
  }
}

export function createConnectUnaryPath(options: ConnectUnaryOptions): ConnectUnaryPath {
  const protocols = new Map<UnaryMethod, Protocol>();
  const protocolOf = (method: UnaryMethod): Protocol => {
    let protocol = protocols.get(method);
    if (!protocol) {
      const serialization = createMethodSerializationLookup(method.spec.method, undefined, options.jsonOptions, { readMaxBytes: options.readMaxBytes, writeMaxBytes: 0xffffffff });
      protocols.set(method, (protocol = { serialization, options }));
    }
    return protocol;
  };

  /** The call for this request if this path takes it (see the top of this file). */
  const take = (method: string | undefined, target: string | undefined, headers: IncomingHttpHeaders) => {
    if (method !== "POST") return undefined;
    const unary = options.calls.atPath((target ?? "").split("?", 1)[0]!);
    if (!unary) return undefined;
    const type = parseContentType(headerValue(headers["content-type"]));
    if (!type || type.stream) return undefined;
    const timeout = parseTimeout(headerValue(headers["connect-timeout-ms"]), Number.MAX_SAFE_INTEGER);
    const compression = compressionNegotiate(options.acceptCompression, headerValue(headers["content-encoding"]), headerValue(headers["accept-encoding"]), "accept-encoding");
    // A Content-Encoding the server cannot decode is answered before routing (http/protocol-answers.ts).
    if (compression.error) return undefined;
    return { unary, binary: type.binary, timeout, compression };
  };

  return {
    serve(req, res) {
      const taken = take(req.method, req.url, req.headers);
      if (!taken) return false;
      const { unary, binary, timeout, compression } = taken;
      void options.calls.run(new ConnectCall(unary.spec, nodeExchange(req, res), contextValuesFor(req), binary, timeout, compression, protocolOf(unary)), unary);
      return true;
    },
    serveStream(stream, headers, meta, head) {
      const taken = take(headers[":method"], headers[":path"], headers);
      if (!taken) return false;
      const { unary, binary, timeout, compression } = taken;
      const m = meta();
      void options.calls.run(new ConnectCall(unary.spec, streamExchange(stream, headers, m.requestId, head), contextValuesOf(m), binary, timeout, compression, protocolOf(unary)), unary);
      return true;
    },
  };
}
