// The REST form of a unary call for the bench's client: verb, path and body from the
// method's google.api.http annotation (read by the server's own rest/bindings.ts, so the
// bench cannot drift from the routes it measures), the body with snake_case fields as the
// README's curl calls send it, and the answer read back into the response message (a rule's
// response_body is wrapped back into its field). Only what the bench calls: no path
// variables, no query parameters.
import { fromJson, toJson, type DescMethodUnary, type DescMessage, type JsonObject, type JsonValue, type MessageShape } from "@bufbuild/protobuf";
import { restBindings, type RestBinding } from "../../src/server/rest/bindings.js";

export interface RestRequest {
  verb: string;
  path: string;
  body: Buffer;
  /** Content headers: the JSON content type when there is a body. */
  headers: Record<string, string>;
}

const bindings = new WeakMap<DescMethodUnary, RestBinding>();

/** The method's first REST binding; throws for a method without one or with path variables. */
function bindingOf(method: DescMethodUnary): RestBinding {
  let binding = bindings.get(method);
  if (!binding) {
    binding = restBindings([method.parent]).find((b) => b.method === method && b.index === 0);
    if (!binding) throw new Error(`${method}: no google.api.http binding`);
    if (binding.pathParams.length) throw new Error(`${method}: path variables are not supported by the bench's REST client`);
    bindings.set(method, binding);
  }
  return binding;
}

export function encodeRestRequest<I extends DescMessage>(method: DescMethodUnary<I>, message: MessageShape<I>): RestRequest {
  const binding = bindingOf(method);
  const json = toJson(method.input, message, { useProtoFieldName: true }) as JsonObject;
  const { verb, template } = binding;
  if (!binding.body) {
    if (Object.keys(json).length) throw new Error(`${method}: query parameters are not supported by the bench's REST client`);
    return { verb, path: template.source, body: Buffer.alloc(0), headers: {} };
  }
  const body = binding.body === "*" ? json : (json[binding.body.name] ?? {});
  return { verb, path: template.source, body: Buffer.from(JSON.stringify(body)), headers: { "content-type": "application/json" } };
}

export function decodeRestResponse<O extends DescMessage>(method: DescMethodUnary<DescMessage, O>, body: Buffer): MessageShape<O> {
  const binding = bindingOf(method);
  const json = JSON.parse(body.toString("utf8")) as JsonValue;
  return fromJson(method.output, binding.responseField ? { [binding.responseField.name]: json } : json, { ignoreUnknownFields: true });
}
