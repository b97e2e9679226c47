// Errors on the REST paths: `{ "code", "message", "details" }` (DESIGN §2). Details of the
// google.rpc error types are decoded the way Google REST APIs show an Any:
// `{ "@type": "type.googleapis.com/google.rpc.BadRequest", "field_violations": [...] }`;
// others stay as Connect sends them (`{ "type", "value": base64 }`).
import { create, createRegistry, fromBinary, toBinary, toJson, type DescMessage, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { base64Encode } from "@bufbuild/protobuf/wire";
import type { ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { file_google_rpc_error_details } from "../../../gen/google/rpc/error_details_pb.js";

export interface RestErrorBody {
  code: string;
  message: string;
  details: JsonValue[];
}

const detailTypes = createRegistry(file_google_rpc_error_details);

export function restErrorBody(error: ConnectError): RestErrorBody {
  return { code: codeToString(error.code), message: error.rawMessage, details: error.details.map(detailJson) };
}

function detailJson(detail: ConnectError["details"][number]): JsonValue {
  const outgoing = "desc" in detail;
  const typeName = outgoing ? detail.desc.typeName : detail.type;
  const bytes = outgoing ? toBinary(detail.desc, create(detail.desc, detail.value)) : detail.value;
  const desc: DescMessage | undefined = outgoing ? detail.desc : detailTypes.getMessage(typeName);
  if (desc) {
    try {
      return { "@type": `type.googleapis.com/${typeName}`, ...(toJson(desc, fromBinary(desc, bytes), { useProtoFieldName: true }) as JsonObject) };
    } catch {
      // Undecodable bytes, or a message holding an Any we cannot resolve: keep the raw form.
    }
  }
  return { type: typeName, value: base64Encode(bytes, "std_raw") };
}
