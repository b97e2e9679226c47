// The Sequelize models of every table (DESIGN §5). Attributes are camelCase; with the
// instance's `underscored: true` they map to the snake_case columns of the migrations.
//
// Each call binds fresh subclasses to the given Sequelize instance. Model.init mutates the
// class it is called on, so initialising shared classes twice (a test opening two databases,
// or two instances in one process) would silently repoint the first set at the second
// database.
import type { Sequelize } from "sequelize";
import { defineAnalyticsReport, type AnalyticsReport } from "./analytics-report.js";
import { defineNotificationLog, type NotificationLog } from "./notification-log.js";
import { defineOutboxEvent, type OutboxEvent } from "./outbox-event.js";
import { definePointsTransaction, type PointsTransaction } from "./points-transaction.js";
import { defineSession, type Session } from "./session.js";
import { defineUser, type User } from "./user.js";
import { defineUserAuditLog, type UserAuditLog } from "./user-audit-log.js";
import { defineUserDevice, type UserDevice } from "./user-device.js";
import { defineUserKyc, type UserKyc } from "./user-kyc.js";
import { defineUserPoints, type UserPoints } from "./user-points.js";
import { defineUserProfile, type UserProfile } from "./user-profile.js";
import { defineWebhookDelivery, type WebhookDelivery } from "./webhook-delivery.js";

export { AnalyticsReport } from "./analytics-report.js";
export { NOTIFICATION_CHANNELS, NotificationLog, type NotificationChannel } from "./notification-log.js";
export { OutboxEvent } from "./outbox-event.js";
export { PointsTransaction } from "./points-transaction.js";
export { Session } from "./session.js";
export { User, whereLower } from "./user.js";
export { UserAuditLog } from "./user-audit-log.js";
export { DEVICE_TYPES, UserDevice, type DeviceTypeValue } from "./user-device.js";
export { DOCUMENT_TYPES, KYC_STATUSES, UserKyc, type DocumentTypeValue, type KycStatusValue } from "./user-kyc.js";
export { UserPoints } from "./user-points.js";
export { UserProfile } from "./user-profile.js";
export { WEBHOOK_DELIVERY_STATUSES, WebhookDelivery, type WebhookDeliveryStatus } from "./webhook-delivery.js";

export interface Models {
  User: typeof User;
  UserProfile: typeof UserProfile;
  UserKyc: typeof UserKyc;
  UserDevice: typeof UserDevice;
  Session: typeof Session;
  UserAuditLog: typeof UserAuditLog;
  UserPoints: typeof UserPoints;
  PointsTransaction: typeof PointsTransaction;
  OutboxEvent: typeof OutboxEvent;
  WebhookDelivery: typeof WebhookDelivery;
  NotificationLog: typeof NotificationLog;
  AnalyticsReport: typeof AnalyticsReport;
}

export function defineModels(sequelize: Sequelize): Models {
  return {
    User: defineUser(sequelize),
    UserProfile: defineUserProfile(sequelize),
    UserKyc: defineUserKyc(sequelize),
    UserDevice: defineUserDevice(sequelize),
    Session: defineSession(sequelize),
    UserAuditLog: defineUserAuditLog(sequelize),
    UserPoints: defineUserPoints(sequelize),
    PointsTransaction: definePointsTransaction(sequelize),
    OutboxEvent: defineOutboxEvent(sequelize),
    WebhookDelivery: defineWebhookDelivery(sequelize),
    NotificationLog: defineNotificationLog(sequelize),
    AnalyticsReport: defineAnalyticsReport(sequelize),
  };
}
