// OpenAPI 3.1 description of the REST paths, generated from the same bindings the gateway
// serves (rest/bindings.ts), so the document and the gateway cannot drift apart. Schemas
// describe the JSON the gateway speaks: proto (snake_case) field names, 64-bit integers as
// strings, enums by value name, Timestamps as RFC 3339 strings, unset messages as null.
//
// The generated descriptors carry no proto comments (protoc-gen-es embeds them without
// source info), so summaries are derived from the method names and descriptions from the
// auth policy; the comments remain the reference, in proto/identity/v1.
import { getOption, ScalarType, type DescEnum, type DescField, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { isWrapperDesc } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { auth, AuthPolicy, AuthPolicySchema } from "../../../gen/identity/v1/options_pb.js";
import { sendJson, type PlainRoute } from "../http/plain.js";
import { restBindings, type RestBinding } from "./bindings.js";
import { isNullable } from "./response.js";

export type JsonSchema = { [keyword: string]: unknown };

export interface OpenApiParameter {
  name: string;
  in: "path" | "query";
  required: boolean;
  description?: string;
  schema: JsonSchema;
}

export interface OpenApiOperation {
  operationId: string;
  summary: string;
  description: string;
  tags: string[];
  parameters?: OpenApiParameter[];
  requestBody?: { content: { "application/json": { schema: JsonSchema } } };
  responses: Record<string, JsonSchema>;
  security: Array<Record<string, string[]>>;
  /** The method's identity.v1.auth policy: none, user, staff, staff_or_service (unspecified: refused). */
  "x-auth-policy": string;
}

export interface OpenApiDocument {
  openapi: "3.1.0";
  info: { title: string; version: string; description: string };
  servers: Array<{ url: string; description?: string }>;
  tags: Array<{ name: string; description: string }>;
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: {
    schemas: Record<string, JsonSchema>;
    responses: Record<string, JsonSchema>;
    securitySchemes: Record<string, JsonSchema>;
  };
}

export interface OpenApiInfo {
  title: string;
  version: string;
  /** Base URL of the server; unset: "/", the host that serves the document. */
  serverUrl?: string;
}

const errorRef = { $ref: "#/components/responses/Error" };
const openApiMethods = new Set(["get", "put", "post", "delete", "patch", "head", "options", "trace"]);

const policyNotes: Record<AuthPolicy, string> = {
  [AuthPolicy.UNSPECIFIED]: "No auth policy is set: the server refuses every caller.",
  [AuthPolicy.NONE]: "No authentication: the request carries its own proof.",
  [AuthPolicy.USER]: "Requires a user's access token.",
  [AuthPolicy.STAFF]: "Staff only: requires the access token of a staff user.",
  [AuthPolicy.STAFF_OR_SERVICE]: "Staff or service: requires the access token of a staff user, or a service token.",
  [AuthPolicy.OPTIONAL_USER]: "Optional user: a user's access token, when sent, identifies the caller; some requests need it (see the method).",
};

/** Well-known types with a JSON form of their own (wrappers are handled as their value). */
const wktSchemas: Record<string, JsonSchema> = {
  "google.protobuf.Timestamp": { type: "string", format: "date-time" },
  "google.protobuf.Duration": { type: "string", pattern: "^-?\\d+(\\.\\d{1,9})?s$", examples: ["1.5s"] },
  "google.protobuf.FieldMask": { type: "string", description: "Comma-separated lowerCamelCase field paths." },
  "google.protobuf.Struct": { type: "object", additionalProperties: true },
  "google.protobuf.Value": {},
  "google.protobuf.ListValue": { type: "array", items: {} },
  "google.protobuf.Any": { type: "object", properties: { "@type": { type: "string" } }, required: ["@type"], additionalProperties: true },
};

export function buildOpenApiDocument(services: readonly DescService[], info: OpenApiInfo): OpenApiDocument {
  const schemas = new SchemaSet();
  const paths: OpenApiDocument["paths"] = {};
  for (const binding of restBindings(services)) {
    const verb = binding.verb.toLowerCase();
    if (!openApiMethods.has(verb)) throw new Error(`${binding.method}: HTTP method ${binding.verb} cannot be described in OpenAPI`);
    (paths[binding.template.openApiPath] ??= {})[verb] = operation(binding, schemas);
  }
  return {
    openapi: "3.1.0",
    info: {
      title: info.title,
      version: info.version,
      description:
        "REST paths of the identity API, transcoded from its google.api.http annotations; every operation is also " +
        "served over Connect and gRPC. Requests take proto (snake_case) or lowerCamelCase field names and ignore " +
        "unknown fields. Responses carry every field under its proto name: defaults included, unset messages as null.",
    },
    // A relative URL resolves against where the document was fetched: the serving instance.
    servers: [info.serverUrl ? { url: info.serverUrl } : { url: "/", description: "The host serving this document." }],
    tags: services.map((s) => ({ name: s.name, description: `${s.typeName}, also served over Connect and gRPC.` })),
    paths,
    components: {
      schemas: { ...schemas.components, Error: errorSchema() },
      responses: { Error: { description: "Error, with the HTTP status Connect maps its code to.", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } } },
      securitySchemes: { bearerAuth: { type: "http", scheme: "bearer", bearerFormat: "JWT" } },
    },
  };
}

/** Serves the document at GET /openapi.json. */
export function openApiRoute(doc: OpenApiDocument): PlainRoute {
  return (req, res, url) => {
    if (url.pathname !== "/openapi.json") return false;
    if (req.method === "GET" || req.method === "HEAD") sendJson(res, 200, doc);
    else sendJson(res, 405, { code: codeToString(Code.Unimplemented), message: `${req.method} is not allowed on /openapi.json`, details: [] }, { allow: "GET, HEAD" });
    return true;
  };
}

function operation(binding: RestBinding, schemas: SchemaSet): OpenApiOperation {
  const { service, method, index } = binding;
  const policy = getOption(method, auth);
  const input = method.input;
  const parameters: OpenApiParameter[] = [
    ...binding.pathParams.map((fp, i) => ({
      name: fp.name,
      in: "path" as const,
      required: true,
      ...(binding.template.variables[i]?.multiSegment ? { description: "Spans several path segments." } : {}),
      schema: schemas.value(fp.leaf),
    })),
    ...binding.queryParams.map((fp) => ({
      name: fp.name,
      in: "query" as const,
      required: false,
      ...(fp.jsonName !== fp.name ? { description: `Also accepted as "${fp.jsonName}".` } : {}),
      schema: schemas.value(fp.leaf),
    })),
  ];
  let body: JsonSchema | undefined;
  if (binding.body === "*") {
    // Path variables are not part of the body (a body field of the same name is overridden).
    const inPath = new Set(binding.pathParams.map((fp) => fp.fields[0]!.name));
    body = inPath.size ? schemas.object(input, inPath) : schemas.value(input);
  } else if (binding.body) {
    body = schemas.value(binding.body);
  }
  // A response_body message is served as an object even when unset (rest/response.ts).
  const field = binding.responseField;
  const response = !field ? schemas.value(method.output) : field.fieldKind === "message" ? schemas.value(field) : schemas.field(field);
  const protectedCall = policy !== AuthPolicy.NONE;
  const restricted = protectedCall && policy !== AuthPolicy.USER && policy !== AuthPolicy.OPTIONAL_USER;
  return {
    operationId: `${service.name}_${method.name}${index ? `_${index}` : ""}`,
    summary: method.name.replace(/(?<=[a-z0-9])(?=[A-Z])/g, " "),
    description: `${policyNotes[policy]}\n\nRPC \`${service.typeName}/${method.name}\`.`,
    tags: [service.name],
    ...(parameters.length ? { parameters } : {}),
    ...(body ? { requestBody: { content: { "application/json": { schema: body } } } } : {}),
    responses: {
      "200": { description: "OK", content: { "application/json": { schema: response } } },
      "400": { ...errorRef, description: "invalid_argument: malformed JSON, or a field value the method refuses." },
      ...(protectedCall ? { "401": { ...errorRef, description: "unauthenticated: missing, invalid, expired or revoked token." } } : {}),
      ...(restricted ? { "403": { ...errorRef, description: "permission_denied: the caller may not call this method." } } : {}),
      default: errorRef,
    },
    // Public operations say so (an empty requirement), rather than leaving it unsaid;
    // OPTIONAL_USER: anonymous or with a token (the empty requirement makes the token optional).
    security: !protectedCall ? [] : policy === AuthPolicy.OPTIONAL_USER ? [{}, { bearerAuth: [] }] : [{ bearerAuth: [] }],
    "x-auth-policy": (AuthPolicySchema.value[policy]?.name ?? "").replace(/^AUTH_POLICY_/, "").toLowerCase(),
  };
}

/** The component schemas reachable from the operations, named by full proto type name. */
class SchemaSet {
  readonly components: Record<string, JsonSchema> = {};

  /** The JSON value of a field, or of a message/enum type, without null (path, query, bodies). */
  value(of: DescField | DescMessage | DescEnum): JsonSchema {
    if (of.kind === "enum") return this.ref(of, () => ({ type: "string", enum: of.values.map((v) => v.name) }));
    if (of.kind === "message") {
      if (isWrapperDesc(of)) return this.value(of.fields[0]!);
      return wktSchemas[of.typeName] ?? this.ref(of, () => this.object(of));
    }
    switch (of.fieldKind) {
      case "scalar":
        return scalarSchema(of.scalar);
      case "enum":
        return this.value(of.enum);
      case "message":
        return this.value(of.message);
      case "list":
        return { type: "array", items: of.listKind === "scalar" ? scalarSchema(of.scalar) : this.value(of.listKind === "enum" ? of.enum : of.message) };
      case "map":
        return { type: "object", additionalProperties: of.mapKind === "scalar" ? scalarSchema(of.scalar) : this.value(of.mapKind === "enum" ? of.enum : of.message) };
    }
  }

  /** A message as a JSON object under proto field names, optionally without some fields. */
  object(desc: DescMessage, omit: ReadonlySet<string> = new Set()): JsonSchema {
    const properties: Record<string, JsonSchema> = {};
    for (const field of desc.fields) {
      if (!omit.has(field.name)) properties[field.name] = this.field(field);
    }
    return { type: "object", properties };
  }

  /** A field as it appears in a message: null allowed where the gateway writes null for unset. */
  field(field: DescField): JsonSchema {
    return isNullable(field) ? nullable(this.value(field)) : this.value(field);
  }

  private ref(desc: DescMessage | DescEnum, build: () => JsonSchema): JsonSchema {
    if (!(desc.typeName in this.components)) {
      this.components[desc.typeName] = {}; // reserved first: recursive messages refer to themselves
      this.components[desc.typeName] = build();
    }
    return { $ref: `#/components/schemas/${desc.typeName}` };
  }
}

function nullable(schema: JsonSchema): JsonSchema {
  return typeof schema.type === "string" ? { ...schema, type: [schema.type, "null"] } : { anyOf: [schema, { type: "null" }] };
}

function scalarSchema(scalar: ScalarType): JsonSchema {
  switch (scalar) {
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.BYTES:
      return { type: "string", contentEncoding: "base64" };
    case ScalarType.DOUBLE:
      return { type: "number", format: "double" };
    case ScalarType.FLOAT:
      return { type: "number", format: "float" };
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return { type: "integer", format: "int32" };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: "integer", minimum: 0, maximum: 4294967295 };
    // Protobuf JSON writes 64-bit integers as strings: JavaScript numbers cannot hold them all.
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return { type: "string", format: "int64", pattern: "^-?\\d+$" };
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return { type: "string", format: "uint64", pattern: "^\\d+$" };
  }
}

function errorSchema(): JsonSchema {
  const codes = Object.values(Code)
    .filter((c): c is Code => typeof c === "number")
    .map(codeToString);
  return {
    type: "object",
    required: ["code", "message", "details"],
    properties: {
      code: { type: "string", enum: codes },
      message: { type: "string" },
      details: {
        type: "array",
        description: 'google.rpc error details as JSON, e.g. { "@type": "type.googleapis.com/google.rpc.BadRequest", "field_violations": [...] }.',
        items: { type: "object", additionalProperties: true },
      },
    },
  };
}
