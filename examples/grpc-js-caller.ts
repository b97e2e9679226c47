// An internal backend calling the identity service with a plain gRPC stack: @grpc/grpc-js,
// with the .proto files loaded at run time by @grpc/proto-loader (no generated code).
// It forwards a user's access token to GetMe to learn who the user is. (Service tokens are
// for the staff-or-service methods such as AdjustPoints; GetMe answers users only.)
//
//   npx tsx examples/grpc-js-caller.ts 127.0.0.1:8080 "$ACCESS_TOKEN"
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));

interface Timestamp {
  seconds: string; // int64, as a string (longs: String)
  nanos: number;
}

/** identity.v1.User as proto-loader decodes it: with keepCase, the .proto's snake_case names. */
export interface User {
  id: string;
  username: string;
  email: string;
  phone_number: string;
  is_active: boolean;
  is_staff: boolean;
  date_joined: Timestamp | null;
  last_login: Timestamp | null;
}

// The slice of the dynamic client this example uses, typed by hand.
type UserAuthClient = InstanceType<grpc.ServiceClientConstructor> & {
  GetMe(request: object, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<{ user: User | null }>): grpc.ClientUnaryCall;
};

let userAuthClient: grpc.ServiceClientConstructor | undefined;

function loadUserAuthClient(): grpc.ServiceClientConstructor {
  if (userAuthClient) return userAuthClient;
  const definition = protoLoader.loadSync("identity/v1/auth.proto", {
    // auth.proto imports identity/v1/* from proto/ and google/api/* from third_party/proto/.
    includeDirs: [resolve(repoRoot, "proto"), resolve(repoRoot, "third_party/proto")],
    keepCase: true,
    longs: String,
    enums: String,
    // Unset fields decode as their proto3 defaults ("" / false / null) instead of missing.
    defaults: true,
  });
  const identity = grpc.loadPackageDefinition(definition).identity as grpc.GrpcObject;
  userAuthClient = (identity.v1 as grpc.GrpcObject).UserAuthService as grpc.ServiceClientConstructor;
  return userAuthClient;
}

export interface CallOptions {
  /** Milliseconds before the call fails with DEADLINE_EXCEEDED; 5 s by default. */
  deadlineMs?: number;
  /** Cleartext HTTP/2 by default; grpc.credentials.createSsl() for a TLS listener. */
  credentials?: grpc.ChannelCredentials;
}

/**
 * The account of the user whose access token this is. Rejects with a grpc.ServiceError
 * whose `code` is the gRPC status (UNAUTHENTICATED for a bad or expired token).
 *
 * It opens and closes a channel per call to stay self-contained; a real backend creates
 * one client per address at start-up and keeps it.
 */
export function getMe(address: string, accessToken: string, { deadlineMs = 5_000, credentials = grpc.credentials.createInsecure() }: CallOptions = {}): Promise<User> {
  const Client = loadUserAuthClient();
  const client = new Client(address, credentials) as UserAuthClient;
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${accessToken}`);
  return new Promise<User>((resolveUser, reject) => {
    client.GetMe({}, metadata, { deadline: Date.now() + deadlineMs }, (err, res) => {
      client.close();
      if (err) reject(err);
      else if (!res?.user) reject(new Error("GetMe answered without a user"));
      else resolveUser(res.user);
    });
  });
}

const isServiceError = (e: unknown): e is grpc.ServiceError => e instanceof Error && typeof (e as Partial<grpc.ServiceError>).code === "number";

async function main(args: string[]): Promise<number> {
  const [address, token] = args;
  if (!address || !token) {
    console.error("usage: tsx examples/grpc-js-caller.ts <host:port> <access token>");
    return 2;
  }
  try {
    console.log(JSON.stringify(await getMe(address, token), null, 2));
    return 0;
  } catch (e) {
    if (!isServiceError(e)) throw e;
    console.error(`GetMe failed: ${grpc.status[e.code]} (${e.code}): ${e.details}`);
    return 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
