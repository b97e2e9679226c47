// The API side of an instance: domain services over the stores, behind the one-port server.
import type { ConnectRouter } from "@connectrpc/connect";
import path from "node:path";
import { QueryTypes } from "sequelize";
import { AccountService } from "../gen/identity/v1/account_pb.js";
import { AdminService } from "../gen/identity/v1/admin_pb.js";
import { UserAuthService } from "../gen/identity/v1/auth_pb.js";
import { DeviceService } from "../gen/identity/v1/device_pb.js";
import { KycService } from "../gen/identity/v1/kyc_pb.js";
import { PointsService } from "../gen/identity/v1/points_pb.js";
import { ProfileService } from "../gen/identity/v1/profile_pb.js";
import type { Config } from "./config.js";
import { createAccountDeletion } from "./domain/account-deletion.js";
import { createAuditLogBrowser } from "./domain/admin-audit-logs.js";
import { createAdminUsers } from "./domain/admin-users.js";
import { createAccountExport } from "./domain/account-export.js";
import { createActivityTracker } from "./domain/activity.js";
import type { AuditEntry } from "./domain/audit.js";
import { createAuth } from "./domain/auth.js";
import { createBatchLoader } from "./domain/batch-loader.js";
import { createDenyList } from "./domain/deny-list.js";
import { createDevicesDomain } from "./domain/devices.js";
import { createIdentifierChange } from "./domain/identifier-change.js";
import { loadKeyRing } from "./domain/keys.js";
import { createMyActivity } from "./domain/my-activity.js";
import { createKycDomain } from "./domain/kyc.js";
import { createOtpService } from "./domain/otp.js";
import { createPointsDomain } from "./domain/points.js";
import { createProfileDomain } from "./domain/profiles.js";
import { loadServerSecret } from "./domain/server-secret.js";
import { createSessions } from "./domain/sessions.js";
import { createTokenIssuer } from "./domain/tokens.js";
import { createUsageStatsDomain } from "./domain/usage-stats.js";
import type { Logger } from "./logger.js";
import type { Notifier } from "./notify/index.js";
import { createAccountServiceImpl } from "./rpc/account.js";
import { createAdminServiceImpl } from "./rpc/admin.js";
import { createAuthServiceImpl } from "./rpc/auth.js";
import { createDeviceServiceImpl } from "./rpc/device.js";
import { createKycServiceImpl } from "./rpc/kyc.js";
import { createPointsServiceImpl } from "./rpc/points.js";
import { createProfileServiceImpl } from "./rpc/profile.js";
import { PROJECT_ROOT } from "./project-root.js";
import { createAuthInterceptor } from "./server/calls/auth.js";
import { consoleRoute } from "./server/endpoints/console.js";
import { jwksRoute } from "./server/endpoints/jwks.js";
import { buildOpenApiDocument, openApiRoute } from "./server/rest/openapi.js";
import type { ReadinessCheck } from "./server/endpoints/health.js";
import { startServer, type RunningServer } from "./server/server.js";
import { apiServices } from "./server/services.js";
import { checkRedis, writeAudit, type Stores } from "./store/index.js";

export const API_VERSION = "0.1.0";

/** What /readyz verifies on every instance, whatever its role: PostgreSQL answers, Redis can take writes (src/store/redis.ts). */
export function storeReadiness({ sequelize, redis }: Pick<Stores, "sequelize" | "redis">): ReadinessCheck[] {
  return [
    { name: "postgres", check: async () => void (await sequelize.query("SELECT 1", { type: QueryTypes.SELECT })) },
    { name: "redis", check: () => checkRedis(redis) },
  ];
}

/** `readiness`: checks /readyz runs besides PostgreSQL and Redis (e.g. the job worker's, under ROLE=all). */
export async function startApi(config: Config, logger: Logger, stores: Stores, notifier: Notifier, readiness: ReadinessCheck[] = []): Promise<RunningServer> {
  const { sequelize, models, redis } = stores;
  const secret = loadServerSecret(config, logger);
  const ring = loadKeyRing(config, logger);
  const issuer = createTokenIssuer(ring, config);
  const denyList = createDenyList(stores);
  // OTP audit rows record no database change of their own (OTP state is in Redis): those of
  // concurrent calls go in one INSERT, one round trip and one commit, before each call answers.
  const otpAudit = createBatchLoader(async (entries: AuditEntry[]) => {
    await writeAudit(models, entries);
    return new Map<AuditEntry, void>();
  });
  const otp = createOtpService({ redis, config, secret, notifier, logger, audit: async (e) => void (await otpAudit(e)), outages: stores.outages });
  const sessions = createSessions({ sequelize, models, redis, issuer, denyList, secret, config, logger });
  const deletion = createAccountDeletion({ sequelize, models, otp, graceSeconds: config.accountDeletionGraceSeconds });
  const auth = createAuth({ sequelize, models, otp, sessions, deletion, logger });
  const activity = createActivityTracker({ redis, logger });

  // Auth guards the API services; health and reflection stay open. Every authenticated
  // user call marks activity (debounced in Redis; never fails or delays the call).
  const authInterceptor = createAuthInterceptor({
    issuer,
    denyList,
    services: apiServices,
    logger,
    checkPrincipal: async (p) => {
      const status = await sessions.checkPrincipal(p);
      if (p.kind === "user") void activity.touch(p.subject);
      return status;
    },
  });
  const profiles = createProfileDomain({ sequelize, models });
  const points = createPointsDomain({ sequelize, models, pointsValue: config.pointsValue });
  const routes = (router: ConnectRouter) => {
    router.service(UserAuthService, createAuthServiceImpl({ auth, changeIdentifier: createIdentifierChange({ sequelize, models, otp }), otp, sessions }));
    router.service(ProfileService, createProfileServiceImpl({ profiles, usageStats: createUsageStatsDomain({ sequelize, models }) }));
    router.service(KycService, createKycServiceImpl({ kyc: createKycDomain({ sequelize, models, logger }) }));
    router.service(DeviceService, createDeviceServiceImpl({ devices: createDevicesDomain({ sequelize, models }) }));
    router.service(
      AccountService,
      createAccountServiceImpl({
        deletion,
        exportData: createAccountExport({ sequelize, models, redis, profiles, points, exportsPerHour: config.accountExportsPerHour }),
        activity: createMyActivity({ sequelize }),
      }),
    );
    router.service(PointsService, createPointsServiceImpl({ points }));
    router.service(AdminService, createAdminServiceImpl({ users: createAdminUsers({ sequelize, models, pointsValue: config.pointsValue }), auditLogs: createAuditLogBrowser(sequelize) }));
  };

  const openApi = buildOpenApiDocument(apiServices, { title: "Identity API", version: API_VERSION });
  return startServer({
    config,
    logger,
    routes,
    interceptors: [authInterceptor],
    outages: stores.outages,
    readiness: [...storeReadiness(stores), ...readiness],
    restServices: apiServices,
    plainRoutes: () => [
      jwksRoute(ring),
      openApiRoute(openApi),
      // The staff console's built files (npm run build).
      consoleRoute(path.join(PROJECT_ROOT, "dist", "console")),
    ],
  });
}
