// The REST body of a successful call: the response message in protobuf JSON with proto
// (snake_case) field names and every field present — implicit-presence fields with their
// default value, unset explicit-presence fields (messages such as a Timestamp, `optional`
// scalars, oneof members) as null — narrowed to the `response_body` field when the rule
// names one.
import { create, toJson, type DescField, type DescMessage, type JsonObject, type JsonValue, type Message } from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import type { RestBinding } from "./bindings.js";

/** Whether the REST JSON may carry null for the field (unset explicit presence). */
export function isNullable(field: DescField): boolean {
  return field.fieldKind !== "list" && field.fieldKind !== "map" && field.presence !== FeatureSet_FieldPresence.IMPLICIT;
}

export function restResponseBody(binding: RestBinding, response: Message): JsonValue {
  const output = binding.method.output;
  const json = messageJson(output, response);
  const field = binding.responseField;
  if (!field) return json;
  // An unset message is still served as an object, as the OpenAPI document promises.
  if (json[field.name] === null && field.fieldKind === "message") return messageJson(field.message, create(field.message));
  return json[field.name]!;
}

function messageJson(desc: DescMessage, message: Message): JsonObject {
  return withNulls(desc, toJson(desc, message, { useProtoFieldName: true, alwaysEmitImplicit: true }) as JsonObject);
}

function withNulls(desc: DescMessage, json: JsonObject): JsonObject {
  for (const field of desc.fields) {
    const value = json[field.name];
    if (value === undefined) {
      json[field.name] = null;
      continue;
    }
    // Well-known types have their own JSON forms (a Timestamp is a string): leave them be.
    const nested = field.message && !field.message.typeName.startsWith("google.protobuf.") ? field.message : undefined;
    if (!nested) continue;
    if (field.fieldKind === "message") withNulls(nested, value as JsonObject);
    else if (field.fieldKind === "list") for (const item of value as JsonObject[]) withNulls(nested, item);
    else for (const item of Object.values(value as Record<string, JsonObject>)) withNulls(nested, item);
  }
  return json;
}
