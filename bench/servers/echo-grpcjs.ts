// Ceiling row "echo-grpcjs": a bare @grpc/grpc-js server with the echo method, as a grpc-js
// user would write it (proto-loader, protobufjs serialisation, no interceptors).
import * as grpc from "@grpc/grpc-js";
import { loadEchoDefinition } from "../echo.js";
import { serveIpc } from "./ipc.js";

const { bench } = grpc.loadPackageDefinition(loadEchoDefinition()) as unknown as { bench: { v1: { EchoService: grpc.ServiceClientConstructor } } };
let ok = 0;
const server = new grpc.Server();
server.addService(bench.v1.EchoService.service, {
  Echo(call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) {
    ok++;
    callback(null, call.request);
  },
});
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  serveIpc(port, () => ok, () => new Promise((resolve) => server.tryShutdown(() => resolve())));
});
