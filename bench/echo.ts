// The echo service of the ceiling rows, from bench/echo.proto, loaded at run time: nothing is
// generated for it (it stays out of gen/ and of buf's API module). grpc-js reads the file with
// proto-loader, as any grpc-js server would; connect-node gets a DescService built from the
// file descriptor proto-loader produced, so both servers speak the very same message.
import { createFileRegistry, fromBinary, type DescMethod, type DescMethodUnary, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import * as protoLoader from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";

const ECHO_PROTO = fileURLToPath(new URL("./echo.proto", import.meta.url));
export const ECHO_SERVICE = "bench.v1.EchoService";
export const ECHO_PATH = `/${ECHO_SERVICE}/Echo`;

export function loadEchoDefinition(): protoLoader.PackageDefinition {
  return protoLoader.loadSync(ECHO_PROTO, { keepCase: true });
}

export interface EchoDescriptors {
  service: DescService;
  echo: DescMethodUnary;
}

const isUnary = (m: DescMethod | undefined): m is DescMethodUnary => m?.methodKind === "unary";

export function echoDescriptors(): EchoDescriptors {
  const method = (loadEchoDefinition()[ECHO_SERVICE] as protoLoader.ServiceDefinition).Echo!;
  const [file, ...imports] = (method.requestType.fileDescriptorProtos as Buffer[]).map((b) => fromBinary(FileDescriptorProtoSchema, b));
  if (!file || imports.length) throw new Error("bench/echo.proto must be one self-contained file");
  const service = createFileRegistry(file, () => undefined).getService(ECHO_SERVICE);
  const echo = service?.methods.find((m) => m.name === "Echo");
  if (!service || !isUnary(echo)) throw new Error(`${ECHO_SERVICE}/Echo (unary) not found in bench/echo.proto`);
  return { service, echo };
}
