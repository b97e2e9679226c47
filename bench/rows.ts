// The rows of the table: what each one measures, against which server, with which load.
import { UserAuthService } from "../gen/identity/v1/auth_pb.js";
import { echoDescriptors, ECHO_PATH } from "./echo.js";
import type { Scenario, UserCursor } from "./load/protocol.js";
import { encodeRequest, type RawRequest, type Wire } from "./load/rpc-client.js";
import type { TargetKind } from "./targets.js";

export const ROW_IDS = [
  "echo-grpcjs",
  "echo-connect",
  "getme-grpc",
  "getme-connect-h2",
  "getme-connect-h1",
  "getme-rest",
  "getme-rest-h2",
  "getme-sessions",
  "refresh",
  "refresh-rest",
  "signin",
  "update-profile",
] as const;
export type RowId = (typeof ROW_IDS)[number];

/** The row every other row is compared with. */
export const CEILING_ROW: RowId = "echo-grpcjs";

export interface RowContext {
  /** Access token of the first signed-in session. */
  accessToken: string;
  /** JSON file of the signed-in sessions (SessionTokens[]). */
  sessionsFile: string;
  users: UserCursor;
}

export type RowLoad =
  /** One request replayed (h2load); `procedure` counts its outcomes on the server (used for gRPC: its errors are HTTP 200s). */
  | { kind: "fixed"; request: RawRequest; procedure: string }
  /** Requests that differ every time: a Node load worker. */
  | { kind: "scenario"; scenario: Scenario };

export interface RowDef {
  id: RowId;
  title: string;
  target: TargetKind;
  unit: "req/s" | "flows/s";
  /** Needs signed-in sessions (made before the first such row). */
  sessions: boolean;
  load(ctx: RowContext): RowLoad;
}

const getMe = UserAuthService.method.getMe;
const getMeProcedure = `/${UserAuthService.typeName}/${getMe.name}`;

function echoLoad(): RowLoad {
  const { echo } = echoDescriptors();
  return { kind: "fixed", request: encodeRequest("grpc", echo, { message: "ping" } as never), procedure: ECHO_PATH };
}

function getMeLoad(wire: Wire): RowDef["load"] {
  return ({ accessToken }) => ({ kind: "fixed", request: encodeRequest(wire, getMe, {}, { authorization: `Bearer ${accessToken}` }), procedure: getMeProcedure });
}

/** The refresh scenario (each session's latest token, one call per session at a time) over `wire`. */
function refreshLoad(wire?: Wire): RowDef["load"] {
  return ({ sessionsFile }) => ({ kind: "scenario", scenario: { kind: "refresh", sessionsFile, ...(wire && { wire }) } });
}

export const ROWS: Record<RowId, RowDef> = {
  "echo-grpcjs": { id: "echo-grpcjs", title: "ceiling: bare @grpc/grpc-js echo (gRPC)", target: "echo-grpcjs", unit: "req/s", sessions: false, load: echoLoad },
  "echo-connect": { id: "echo-connect", title: "ceiling: echo on our listener + connect-node (gRPC)", target: "echo-connect", unit: "req/s", sessions: false, load: echoLoad },
  "getme-grpc": { id: "getme-grpc", title: "GetMe, gRPC h2c, one token", target: "service", unit: "req/s", sessions: true, load: getMeLoad("grpc") },
  "getme-connect-h2": { id: "getme-connect-h2", title: "GetMe, Connect JSON h2c, one token", target: "service", unit: "req/s", sessions: true, load: getMeLoad("connect-h2") },
  "getme-connect-h1": { id: "getme-connect-h1", title: "GetMe, Connect JSON HTTP/1.1, one token", target: "service", unit: "req/s", sessions: true, load: getMeLoad("connect-h1") },
  "getme-rest": { id: "getme-rest", title: "GetMe, REST GET /api/auth/me HTTP/1.1, one token", target: "service", unit: "req/s", sessions: true, load: getMeLoad("rest-h1") },
  "getme-rest-h2": { id: "getme-rest-h2", title: "GetMe, REST GET /api/auth/me h2c, one token", target: "service", unit: "req/s", sessions: true, load: getMeLoad("rest-h2") },
  "getme-sessions": {
    id: "getme-sessions",
    title: "GetMe, gRPC, every session's token in turn",
    target: "service",
    unit: "req/s",
    sessions: true,
    load: ({ sessionsFile }) => ({ kind: "scenario", scenario: { kind: "getme", sessionsFile } }),
  },
  refresh: {
    id: "refresh",
    title: "RefreshToken, gRPC, latest token of each session",
    target: "service",
    unit: "req/s",
    sessions: true,
    load: refreshLoad(),
  },
  "refresh-rest": {
    id: "refresh-rest",
    title: "RefreshToken, REST POST /api/auth/token/refresh HTTP/1.1, latest token of each session",
    target: "service",
    unit: "req/s",
    sessions: true,
    load: refreshLoad("rest-h1"),
  },
  signin: {
    id: "signin",
    title: "OTP sign-in: RequestOtp → VerifyOtp → Login, gRPC, a fresh identifier each flow",
    target: "service",
    unit: "flows/s",
    sessions: false,
    load: ({ users }) => ({ kind: "scenario", scenario: { kind: "signin", users } }),
  },
  "update-profile": {
    id: "update-profile",
    title: "UpdateProfile (write + audit), gRPC",
    target: "service",
    unit: "req/s",
    sessions: true,
    load: ({ sessionsFile }) => ({ kind: "scenario", scenario: { kind: "update-profile", sessionsFile } }),
  },
};
