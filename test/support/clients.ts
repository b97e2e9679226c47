// Real clients for end-to-end tests: Connect (HTTP/1.1 JSON, HTTP/2), gRPC and gRPC-Web
// through connect-node, @grpc/grpc-js for a separate gRPC stack, and sign-up helpers that go
// through the real OTP flow with the test identifiers.
import { fromBinary, toBinary, type DescMessage, type DescService, type MessageShape } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { OtpPurpose, UserAuthService } from "../../gen/identity/v1/auth_pb.js";
import { TEST_CODE, TEST_PHONE_PREFIX } from "./server.js";

export type Wire = "connect-json-h1" | "connect-json-h2" | "connect-binary-h2" | "grpc" | "grpcweb";

export function transportFor(url: string, wire: Wire = "connect-json-h1") {
  switch (wire) {
    case "connect-json-h1":
      return createConnectTransport({ baseUrl: url, httpVersion: "1.1", useBinaryFormat: false });
    case "connect-json-h2":
      return createConnectTransport({ baseUrl: url, httpVersion: "2", useBinaryFormat: false });
    case "connect-binary-h2":
      return createConnectTransport({ baseUrl: url, httpVersion: "2", useBinaryFormat: true });
    case "grpc":
      return createGrpcTransport({ baseUrl: url });
    case "grpcweb":
      return createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1" });
  }
}

export function clientFor<T extends DescService>(service: T, url: string, wire: Wire = "connect-json-h1"): Client<T> {
  return createClient(service, transportFor(url, wire));
}

export const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

const phoneBase = Math.floor(Math.random() * 5_000_000);
let phoneCounter = 0;
/** A phone number in the test range, unique in this process. */
export function testPhone(): string {
  return `${TEST_PHONE_PREFIX}${String(phoneBase + ++phoneCounter).padStart(7, "0")}`;
}

let userCounter = 0;
export interface SignedUp {
  userId: string;
  sessionId: string;
  accessToken: string;
  refreshToken: string;
  phone: string;
  username: string;
}

/** Registers a new user through RequestOtp → VerifyOtp → Register (test identifier code). */
export async function signUp(url: string, opts: { username?: string; fullName?: string; wire?: Wire } = {}): Promise<SignedUp> {
  const auth = clientFor(UserAuthService, url, opts.wire);
  const phone = testPhone();
  const username = opts.username ?? `user_${process.pid}_${++userCounter}_${Math.random().toString(36).slice(2, 7)}`;
  await auth.requestOtp({ identifier: phone, purpose: OtpPurpose.REGISTER });
  const { verificationToken } = await auth.verifyOtp({ identifier: phone, otp: TEST_CODE, purpose: OtpPurpose.REGISTER });
  const r = await auth.register({ verificationToken, username, phoneNumber: phone, fullName: opts.fullName ?? "" });
  return { userId: r.userId, sessionId: r.sessionId, accessToken: r.accessToken, refreshToken: r.refreshToken, phone, username };
}

/** Signs an existing test-range phone number in again: a new session. */
export async function signIn(url: string, phone: string, wire?: Wire) {
  const auth = clientFor(UserAuthService, url, wire);
  await auth.requestOtp({ identifier: phone, purpose: OtpPurpose.LOGIN });
  const { verificationToken } = await auth.verifyOtp({ identifier: phone, otp: TEST_CODE, purpose: OtpPurpose.LOGIN });
  return auth.login({ identifier: phone, verificationToken });
}

/** A @grpc/grpc-js client on the server's port (cleartext HTTP/2). */
export function grpcJsClient(port: number): grpc.Client {
  return new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

/** A unary call with @grpc/grpc-js, messages encoded with the generated schemas. */
export function grpcUnary<I extends DescMessage, O extends DescMessage>(
  client: grpc.Client,
  path: string,
  input: I,
  output: O,
  message: MessageShape<I>,
  metadata = new grpc.Metadata(),
): Promise<MessageShape<O>> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      path,
      (m: MessageShape<I>) => Buffer.from(toBinary(input, m)),
      (b: Buffer) => fromBinary(output, b),
      message,
      metadata,
      (err, res) => (err ? reject(err) : resolve(res!)),
    );
  });
}

export function bearerMetadata(token: string): grpc.Metadata {
  const m = new grpc.Metadata();
  m.set("authorization", `Bearer ${token}`);
  return m;
}
