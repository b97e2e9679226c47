// The identity SDK: typed clients of the seven identity.v1 services over any connect-es
// transport, with the session (access and refresh tokens) handled for the app.
// Browser-safe: nothing here imports node modules. Transports come from ./node.js (Node:
// gRPC or Connect) and ./web.js (browsers: Connect or gRPC-Web).
import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { AccountService } from "../../gen/identity/v1/account_pb.js";
import { AdminService } from "../../gen/identity/v1/admin_pb.js";
import { UserAuthService } from "../../gen/identity/v1/auth_pb.js";
import { DeviceService } from "../../gen/identity/v1/device_pb.js";
import { KycService } from "../../gen/identity/v1/kyc_pb.js";
import { PointsService } from "../../gen/identity/v1/points_pb.js";
import { ProfileService } from "../../gen/identity/v1/profile_pb.js";
import { withAuth } from "./auth-transport.js";
import { createMemoryTokenStore, type TokenStore } from "./tokens.js";

export { createMemoryTokenStore, type TokenPair, type TokenStore } from "./tokens.js";
// The generated API (services, messages, enums such as OtpPurpose), so apps need no other import.
export * from "../../gen/identity/v1/account_pb.js";
export * from "../../gen/identity/v1/admin_pb.js";
export * from "../../gen/identity/v1/auth_pb.js";
export * from "../../gen/identity/v1/common_pb.js";
export * from "../../gen/identity/v1/device_pb.js";
export * from "../../gen/identity/v1/kyc_pb.js";
export * from "../../gen/identity/v1/points_pb.js";
export * from "../../gen/identity/v1/profile_pb.js";

export interface IdentityClientOptions {
  transport: Transport;
  /** Where the session's tokens live; in memory by default. */
  tokens?: TokenStore;
  /**
   * Runs when the server refuses to renew the session (revoked, expired, or its refresh
   * token reused): the tokens are already cleared; the app should ask the user to sign in.
   */
  onSessionEnded?: () => void;
}

export interface IdentityClient {
  auth: Client<typeof UserAuthService>;
  profile: Client<typeof ProfileService>;
  kyc: Client<typeof KycService>;
  devices: Client<typeof DeviceService>;
  points: Client<typeof PointsService>;
  /** Account deletion, data export and the caller's security activity. */
  account: Client<typeof AccountService>;
  /** Staff administration (users, sessions, audit trail); staff tokens, GetUser also service tokens. */
  admin: Client<typeof AdminService>;
  /** The session's store: read it to persist elsewhere, set it to resume a saved session. */
  tokens: TokenStore;
}

/**
 * Clients of every identity.v1 service sharing one session. `auth.register` and
 * `auth.login` start it, protected calls carry its access token and renew it when it
 * expires, `auth.logout` ends it.
 */
export function createIdentityClient({ transport, tokens = createMemoryTokenStore(), onSessionEnded }: IdentityClientOptions): IdentityClient {
  const authed = withAuth(transport, { tokens, onSessionEnded });
  return {
    auth: createClient(UserAuthService, authed),
    profile: createClient(ProfileService, authed),
    kyc: createClient(KycService, authed),
    devices: createClient(DeviceService, authed),
    points: createClient(PointsService, authed),
    account: createClient(AccountService, authed),
    admin: createClient(AdminService, authed),
    tokens,
  };
}
