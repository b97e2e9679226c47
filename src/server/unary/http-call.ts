// A unary call whose answer is one plain HTTP response (Connect unary, REST), over either kind
// of exchange (http/exchange.ts).
import { Code, ConnectError, type ContextValues } from "@connectrpc/connect";
import { mergeNonProtocolHeaders } from "@connectrpc/connect/protocol";
import type { HttpExchange } from "../http/exchange.js";
import { internalError, UnaryCall, type UnarySpec } from "./call.js";

type HeaderSource = ConstructorParameters<typeof UnaryCall>[2];

export abstract class HttpUnaryCall<Body> extends UnaryCall<Body> {
  constructor(
    spec: UnarySpec,
    protected readonly exchange: HttpExchange,
    values: ContextValues,
    timeoutMs: number | undefined,
    responseHeaders?: HeaderSource,
  ) {
    super(spec, exchange.method, exchange.headers, values, timeoutMs, responseHeaders);
  }

  get url(): string {
    return this.exchange.url();
  }

  protected get open(): boolean {
    return this.exchange.open;
  }

  watch(): void {
    const exchange = this.exchange;
    const onClose = () => {
      exchange.offClose(onClose);
      if (!this.answered) this.end(new ConnectError("the client closed the connection", Code.Canceled));
    };
    exchange.onClose(onClose);
  }

  /**
   * The response headers, with an error's metadata (e.g. Retry-After; not protocol headers, and
   * not from an error read off the wire) and the trailers as `trailer-` headers (how Connect
   * unary carries them).
   */
  protected responseHead(error?: ConnectError): Record<string, string> {
    if (error && !error.isWireError) mergeNonProtocolHeaders(this.responseHeader, error.metadata);
    const head: Record<string, string> = {};
    this.responseHeader.copyTo(head);
    this.responseTrailer.forEach((value, name) => (head[`trailer-${name}`] = value));
    return head;
  }

  /** Sends the response; when HTTP refuses it (a handler's invalid metadata) the exchange is reset and the error returned. */
  protected write(status: number, head: Record<string, string>, body: Uint8Array): ConnectError | undefined {
    try {
      this.exchange.respond(status, head, body);
      return undefined;
    } catch (err) {
      this.exchange.destroy();
      return internalError(err);
    }
  }
}
