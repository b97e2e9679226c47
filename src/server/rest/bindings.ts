// The REST bindings of the API, read once from the methods' google.api.http annotations:
// the single source for the gateway's route table and the OpenAPI document. An annotation
// that cannot be served (unknown field, body on GET, streaming method…) throws at start.
import { getOption, hasOption, type DescField, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { http } from "../../../gen/google/api/annotations_pb.js";
import type { HttpRule } from "../../../gen/google/api/http_pb.js";
import { parsePathTemplate, type PathTemplate } from "./path.js";

/** A request field reached from the request message through singular message fields. */
export interface FieldPath {
  /** Dotted proto names, e.g. "device.device_type". */
  readonly name: string;
  /** Dotted JSON names, e.g. "device.deviceType". */
  readonly jsonName: string;
  readonly fields: readonly DescField[];
  readonly leaf: DescField;
}

export interface RestBinding {
  readonly service: DescService;
  readonly method: DescMethod;
  /** 0 for the rule itself, 1… for its additional_bindings. */
  readonly index: number;
  /** Upper-case HTTP method. */
  readonly verb: string;
  readonly template: PathTemplate;
  /** The field of each path variable, in template order. */
  readonly pathParams: readonly FieldPath[];
  /** "*": the body is the request message; a field: the body is that field; undefined: no body. */
  readonly body: "*" | DescField | undefined;
  /** Fields settable through the query string (none when the body is "*"). */
  readonly queryParams: readonly FieldPath[];
  /** The response field that is the HTTP response body; undefined: the whole response message. */
  readonly responseField: DescField | undefined;
}

/**
 * Well-known types whose JSON form is a single string, number or boolean, so that one
 * query or path value can set them.
 */
const primitiveJsonWkt = new Set([
  "google.protobuf.Timestamp",
  "google.protobuf.Duration",
  "google.protobuf.FieldMask",
  ...["Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes"].map((t) => `google.protobuf.${t}Value`),
]);

function isPrimitiveJsonWkt(message: DescMessage): boolean {
  return primitiveJsonWkt.has(message.typeName);
}

/** Every binding of every annotated method of the services, in declaration order. */
export function restBindings(services: readonly DescService[]): RestBinding[] {
  const bindings: RestBinding[] = [];
  const seen = new Map<string, DescMethod>();
  for (const service of services) {
    for (const method of service.methods) {
      if (!hasOption(method, http)) continue;
      const rule = getOption(method, http);
      if (method.methodKind !== "unary") throw new Error(`${method}: REST bindings need a unary method`);
      [rule, ...rule.additionalBindings].forEach((r, index) => {
        if (index > 0 && r.additionalBindings.length) throw new Error(`${method}: additional_bindings cannot nest`);
        const binding = toBinding(service, method, r, index);
        // Same verb and same path shape: the gateway could serve only one of them.
        const key = `${binding.verb} ${binding.template.source.replace(/\{[^=}]*(?:=([^}]*))?\}/g, (_, pattern?: string) => `{${pattern ?? "*"}}`)}`;
        const other = seen.get(key);
        if (other) throw new Error(`${method}: google.api.http: ${key} is already bound to ${other}`);
        seen.set(key, method);
        bindings.push(binding);
      });
    }
  }
  return bindings;
}

function toBinding(service: DescService, method: DescMethod, rule: HttpRule, index: number): RestBinding {
  const fail = (why: string): never => {
    throw new Error(`${method}: google.api.http: ${why}`);
  };
  const { verb, path } = verbAndPath(rule) ?? fail("no pattern (get, put, post, delete, patch or custom)");
  const template = parsePathTemplate(path);
  const input = method.input;
  const pathParams = template.variables.map(({ fieldPath }) => {
    const fp = resolveFieldPath(input, fieldPath) ?? fail(`path variable "${fieldPath}" is not a field of ${input.typeName}`);
    if (fp.leaf.fieldKind !== "scalar" && fp.leaf.fieldKind !== "enum") fail(`path variable "${fieldPath}" must be a singular scalar or enum`);
    return fp;
  });
  let body: RestBinding["body"];
  if (rule.body === "*") body = "*";
  else if (rule.body !== "") body = input.fields.find((f) => f.name === rule.body) ?? fail(`body "${rule.body}" is not a field of ${input.typeName}`);
  if (body && verb === "GET") fail("GET cannot have a body");
  if (body && body !== "*" && pathParams.some((p) => p.fields[0] === body)) fail(`body "${rule.body}" is also bound by the path`);
  const responseField = rule.responseBody
    ? (method.output.fields.find((f) => f.name === rule.responseBody) ?? fail(`response_body "${rule.responseBody}" is not a field of ${method.output.typeName}`))
    : undefined;
  const bound = new Set(pathParams.map((p) => p.name));
  const queryParams = body === "*" ? [] : queryFields(input, (fp) => bound.has(fp.name) || (fp.fields[0] === body));
  return { service, method, index, verb, template, pathParams, body, queryParams, responseField };
}

function verbAndPath(rule: HttpRule): { verb: string; path: string } | undefined {
  switch (rule.pattern.case) {
    case undefined:
      return undefined;
    case "custom":
      return { verb: rule.pattern.value.kind.toUpperCase(), path: rule.pattern.value.path };
    default:
      return { verb: rule.pattern.case.toUpperCase(), path: rule.pattern.value };
  }
}

function resolveFieldPath(message: DescMessage, dotted: string): FieldPath | undefined {
  const fields: DescField[] = [];
  let current: DescMessage | undefined = message;
  for (const name of dotted.split(".")) {
    const field: DescField | undefined = current?.fields.find((f) => f.name === name);
    if (!field) return undefined;
    fields.push(field);
    current = field.fieldKind === "message" ? field.message : undefined;
  }
  return fieldPath(fields);
}

function fieldPath(fields: DescField[]): FieldPath {
  return {
    name: fields.map((f) => f.name).join("."),
    jsonName: fields.map((f) => f.jsonName).join("."),
    fields,
    leaf: fields[fields.length - 1]!,
  };
}

/**
 * The fields a query parameter may set: scalars, enums, lists of those and primitive-JSON
 * well-known types, also inside singular messages (as "parent.child"). Maps and lists of
 * messages cannot be expressed as query parameters.
 */
function queryFields(message: DescMessage, excluded: (fp: FieldPath) => boolean): FieldPath[] {
  const out: FieldPath[] = [];
  const walk = (msg: DescMessage, prefix: DescField[], enclosing: ReadonlySet<string>): void => {
    for (const field of msg.fields) {
      const fp = fieldPath([...prefix, field]);
      if (excluded(fp)) continue;
      const kind = field.fieldKind === "list" ? field.listKind : field.fieldKind;
      if (kind === "scalar" || kind === "enum") {
        out.push(fp);
      } else if (field.fieldKind === "message") {
        if (isPrimitiveJsonWkt(field.message)) out.push(fp);
        // Recursive types would give endless names; other well-known types have custom JSON.
        else if (!enclosing.has(field.message.typeName) && !field.message.typeName.startsWith("google.protobuf.")) {
          walk(field.message, fp.fields.slice(), new Set(enclosing).add(field.message.typeName));
        }
      }
    }
  };
  walk(message, [], new Set([message.typeName]));
  return out;
}
