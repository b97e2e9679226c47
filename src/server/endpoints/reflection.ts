// gRPC server reflection (grpc.reflection.v1 and v1alpha), answered from the generated
// file descriptors of the services the router actually serves, so grpcurl and
// `buf curl --reflect` see exactly what is callable.
import { create, fromBinary, toBinary, type DescFile, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter } from "@connectrpc/connect";
import * as v1 from "../../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../../gen/grpc/reflection/v1alpha/reflection_pb.js";

interface Index {
  services: string[];
  byFilename: Map<string, DescFile>;
  /** Fully-qualified symbol (message, enum, enum value, field, service, method, extension) → file. */
  bySymbol: Map<string, DescFile>;
  /** "extendee:number" → file declaring the extension. */
  byExtension: Map<string, DescFile>;
  /** Message → numbers of the extensions declared for it (possibly none). */
  extensionNumbers: Map<string, number[]>;
}

/**
 * Registers both reflection services on the router. The index is built on first use,
 * from the router's handlers, so it includes everything registered before or after.
 */
export function registerReflection(router: ConnectRouter): void {
  let index: Index | undefined;
  const answer = (req: v1.ServerReflectionRequest, sent: Set<string>) => respond((index ??= buildIndex(router)), req, sent);

  router.service(v1.ServerReflection, {
    async *serverReflectionInfo(requests) {
      const sent = new Set<string>();
      for await (const req of requests) yield answer(req, sent);
    },
  });
  // v1alpha messages are wire-identical to v1: translate and share the implementation.
  router.service(v1alpha.ServerReflection, {
    async *serverReflectionInfo(requests) {
      const sent = new Set<string>();
      for await (const req of requests) {
        const asV1 = fromBinary(v1.ServerReflectionRequestSchema, toBinary(v1alpha.ServerReflectionRequestSchema, req));
        yield fromBinary(v1alpha.ServerReflectionResponseSchema, toBinary(v1.ServerReflectionResponseSchema, answer(asV1, sent)));
      }
    },
  });
}

type Answer = MessageInitShape<typeof v1.ServerReflectionResponseSchema>["messageResponse"];

function respond(index: Index, req: v1.ServerReflectionRequest, sent: Set<string>): v1.ServerReflectionResponse {
  return create(v1.ServerReflectionResponseSchema, { validHost: req.host, originalRequest: req, messageResponse: answer(index, req.messageRequest, sent) });
}

function answer(index: Index, r: v1.ServerReflectionRequest["messageRequest"], sent: Set<string>): Answer {
  const error = (errorMessage: string, code = Code.NotFound): Answer => ({ case: "errorResponse", value: { errorCode: code, errorMessage } });
  const files = (file: DescFile | undefined, what: string): Answer =>
    file ? { case: "fileDescriptorResponse", value: { fileDescriptorProto: withDependencies(file, sent) } } : error(`${what} not found`);
  switch (r.case) {
    case "listServices":
      return { case: "listServicesResponse", value: { service: index.services.map((name) => ({ name })) } };
    case "fileByFilename":
      return files(index.byFilename.get(r.value), `file ${r.value}`);
    case "fileContainingSymbol":
      return files(index.bySymbol.get(r.value), `symbol ${r.value}`);
    case "fileContainingExtension": {
      const { containingType, extensionNumber } = r.value;
      return files(index.byExtension.get(`${containingType}:${extensionNumber}`), `extension ${extensionNumber} of ${containingType}`);
    }
    case "allExtensionNumbersOfType": {
      const numbers = index.extensionNumbers.get(r.value);
      return numbers ? { case: "allExtensionNumbersResponse", value: { baseTypeName: r.value, extensionNumber: numbers } } : error(`message ${r.value} not found`);
    }
    default:
      return error("empty reflection request", Code.InvalidArgument);
  }
}

/**
 * The file first, then its transitive imports. Imports already sent on this stream are
 * left out (the protocol allows it; clients keep what they received), the file asked for
 * never is.
 */
function withDependencies(file: DescFile, sent: Set<string>): Uint8Array[] {
  const out: Uint8Array[] = [];
  const seen = new Set<string>();
  const queue = [file];
  for (let f = queue.shift(); f; f = queue.shift()) {
    if (seen.has(f.proto.name)) continue;
    seen.add(f.proto.name);
    if (f === file || !sent.has(f.proto.name)) {
      out.push(toBinary(FileDescriptorProtoSchema, f.proto));
      sent.add(f.proto.name);
    }
    queue.push(...f.dependencies);
  }
  return out;
}

function buildIndex(router: ConnectRouter): Index {
  const services = [...new Set(router.handlers.map((h) => h.service))];
  const index: Index = { services: services.map((s) => s.typeName), byFilename: new Map(), bySymbol: new Map(), byExtension: new Map(), extensionNumbers: new Map() };

  const numbersOf = (message: string) => {
    let numbers = index.extensionNumbers.get(message);
    if (!numbers) index.extensionNumbers.set(message, (numbers = []));
    return numbers;
  };
  const addFile = (file: DescFile) => {
    if (index.byFilename.has(file.proto.name)) return;
    index.byFilename.set(file.proto.name, file);
    const symbol = (name: string) => index.bySymbol.set(name, file);
    const addEnums = (enums: DescFile["enums"]) => {
      for (const e of enums) {
        symbol(e.typeName);
        // Enum values are scoped as siblings of their enum.
        const scope = e.typeName.slice(0, e.typeName.length - e.name.length);
        for (const v of e.values) symbol(scope + v.name);
      }
    };
    const addExtensions = (extensions: DescFile["extensions"]) => {
      for (const ext of extensions) {
        symbol(ext.typeName);
        index.byExtension.set(`${ext.extendee.typeName}:${ext.number}`, file);
        numbersOf(ext.extendee.typeName).push(ext.number);
      }
    };
    const addMessages = (messages: DescMessage[]) => {
      for (const m of messages) {
        symbol(m.typeName);
        numbersOf(m.typeName);
        for (const f of m.fields) symbol(`${m.typeName}.${f.name}`);
        addEnums(m.nestedEnums);
        addExtensions(m.nestedExtensions);
        addMessages(m.nestedMessages);
      }
    };
    addMessages(file.messages);
    addEnums(file.enums);
    addExtensions(file.extensions);
    for (const s of file.services) {
      symbol(s.typeName);
      for (const m of s.methods) symbol(`${s.typeName}.${m.name}`);
    }
    file.dependencies.forEach(addFile);
  };
  for (const s of services) addFile(s.file);

  return index;
}
