// The request message of a REST call: the JSON body (proto or JSON field names, unknown
// fields ignored as on the Connect routes), then path variables, then query parameters.
// Path variables win over body fields of the same name. Errors are invalid_argument with
// a google.rpc.BadRequest field violation naming the parameter.
import { create, mergeFromJson, ScalarType, type DescField, type JsonObject, type JsonValue, type Message } from "@bufbuild/protobuf";
import { isWrapperDesc } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "../../../gen/google/rpc/error_details_pb.js";
import type { FieldPath, RestBinding } from "./bindings.js";
import { decodePathValue } from "./path.js";

export interface RestRequestParts {
  /** The parsed JSON body; undefined when the request had none. */
  body: JsonValue | undefined;
  /** Raw matched values of the template's variables, in order. */
  pathValues: readonly string[];
  query: URLSearchParams;
}

export type RequestBuilder = (parts: RestRequestParts) => Message;

export function createRequestBuilder(binding: RestBinding): RequestBuilder {
  const schema = binding.method.input;
  // Query parameters are accepted under proto names (page_size) and JSON names (pageSize).
  const queryByName = new Map<string, FieldPath>();
  for (const fp of binding.queryParams) queryByName.set(fp.name, fp).set(fp.jsonName, fp);

  return ({ body, pathValues, query }) => {
    const message = create(schema);
    if (body !== undefined && binding.body) {
      const json = binding.body === "*" ? body : { [binding.body.name]: body };
      try {
        mergeFromJson(schema, message, json, { ignoreUnknownFields: true });
      } catch (e) {
        throw new ConnectError(`invalid request body: ${errorText(e)}`, Code.InvalidArgument);
      }
    }
    binding.pathParams.forEach((fp, i) => {
      const variable = binding.template.variables[i]!;
      let value: string;
      try {
        value = decodePathValue(pathValues[i] ?? "", variable.multiSegment);
      } catch {
        throw invalidParameter(fp.name, "path", "bad percent-encoding");
      }
      setField(message, fp, jsonFromStrings(fp.leaf, [value]), "path");
    });
    for (const name of new Set(query.keys())) {
      const fp = queryByName.get(name);
      // Unknown parameters are ignored, like unknown JSON fields.
      if (fp) setField(message, fp, jsonFromStrings(fp.leaf, query.getAll(name)), "query");
    }
    return message;
  };

  function setField(message: Message, fp: FieldPath, value: JsonValue, where: "path" | "query"): void {
    let json: JsonValue = value;
    for (let i = fp.fields.length - 1; i >= 0; i--) json = { [fp.fields[i]!.name]: json } satisfies JsonObject;
    try {
      // Strict here: an unknown enum name in a filter must not silently widen a query.
      mergeFromJson(schema, message, json);
    } catch (e) {
      throw invalidParameter(fp.name, where, errorText(e));
    }
  }
}

/**
 * The JSON value of a field given as text: one value, or all of them for a list. Only
 * booleans and enum numbers need converting; protobuf JSON takes every other scalar
 * (numbers included) and the primitive well-known types as strings.
 */
function jsonFromStrings(field: DescField, values: string[]): JsonValue {
  const kind = field.fieldKind === "list" ? field.listKind : field.fieldKind;
  const isBool =
    (kind === "scalar" && field.scalar === ScalarType.BOOL) ||
    (field.fieldKind === "message" && isWrapperDesc(field.message) && field.message.fields[0]?.scalar === ScalarType.BOOL);
  const one = (v: string): JsonValue => {
    if (isBool && /^(true|1)$/i.test(v)) return true;
    if (isBool && /^(false|0)$/i.test(v)) return false;
    if (kind === "enum" && /^-?\d+$/.test(v)) return Number(v);
    return v;
  };
  return field.fieldKind === "list" ? values.map(one) : one(values[values.length - 1]!);
}

function invalidParameter(name: string, where: "path" | "query", description: string): ConnectError {
  return new ConnectError(`invalid ${where} parameter "${name}": ${description}`, Code.InvalidArgument, undefined, [
    { desc: BadRequestSchema, value: { fieldViolations: [{ field: name, description }] } },
  ]);
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
