// A request body read whole, from an HTTP/2 stream or an HTTP request, with a size limit. The
// listeners go once the body is read or refused (see "Letting go" in unary/call.ts).
import { Code, ConnectError } from "@connectrpc/connect";

/** An HTTP/2 stream, an HTTP/1.1 request or an HTTP/2 compatibility request. */
interface BodySource {
  on(event: "data", listener: (chunk: Buffer) => void): unknown;
  on(event: "end" | "close", listener: () => void): unknown;
  off(event: "data", listener: (chunk: Buffer) => void): unknown;
  off(event: "end" | "close", listener: () => void): unknown;
  resume(): unknown;
}

export interface BodyLimit {
  /** Bytes accepted. */
  limit: number;
  /** The request's Content-Length: a larger one is refused before anything is read. */
  declared?: string | undefined;
  /** The limit as the operator configured it, for the message (default: limit). */
  readMaxBytes?: number;
}

/**
 * Reads the body. Beyond the limit: resource_exhausted, and what was not read yet is read and
 * dropped (a declared length over the limit is refused before reading, the body left unread).
 * A client that goes first fails it with canceled. A source that fails also closes: the caller
 * keeps an error listener on it.
 */
export function readBody(source: BodySource, { limit, declared, readMaxBytes = limit }: BodyLimit): Promise<Buffer> {
  const length = Number(declared);
  if (declared !== undefined && length > limit) {
    return Promise.reject(new ConnectError(`message size ${length} is larger than configured readMaxBytes ${readMaxBytes}`, Code.ResourceExhausted));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      source.off("data", onData);
      source.off("end", onEnd);
      source.off("close", onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else {
        done();
        source.resume();
        reject(new ConnectError(`message size is larger than configured readMaxBytes ${readMaxBytes}`, Code.ResourceExhausted));
      }
    };
    const onEnd = () => {
      done();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onClose = () => {
      done();
      reject(new ConnectError("the client closed the stream", Code.Canceled));
    };
    source.on("data", onData);
    source.on("end", onEnd);
    source.on("close", onClose);
  });
}
