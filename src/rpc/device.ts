// DeviceService: maps messages to the devices domain and back, nothing else.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  DeactivateDeviceResponseSchema,
  DeviceSchema,
  DeviceService,
  ListDevicesResponseSchema,
  RegisterDeviceResponseSchema,
  type Device as DeviceMessage,
} from "../../gen/identity/v1/device_pb.js";
import type { Device, DevicesDomain } from "../domain/devices.js";
import { authedCallerOf } from "../server/calls/context.js";
import { deviceTypeFromProto, deviceTypeToProto } from "./convert.js";

export interface DeviceRpcDeps {
  devices: DevicesDomain;
}

export function deviceMessage(d: Device): DeviceMessage {
  return create(DeviceSchema, {
    deviceId: d.deviceId,
    fcmToken: d.fcmToken ?? "",
    deviceType: deviceTypeToProto(d.deviceType),
    deviceName: d.deviceName ?? "",
    appVersion: d.appVersion ?? "",
    osVersion: d.osVersion ?? "",
    isActive: d.isActive,
    lastUsed: timestampFromDate(d.lastUsed),
    createdAt: timestampFromDate(d.createdAt),
  });
}

export function createDeviceServiceImpl({ devices }: DeviceRpcDeps): ServiceImpl<typeof DeviceService> {
  return {
    async registerDevice(req, ctx) {
      const device = await devices.register(authedCallerOf(ctx), {
        deviceId: req.deviceId,
        fcmToken: req.fcmToken,
        deviceType: deviceTypeFromProto(req.deviceType),
        deviceName: req.deviceName,
        appVersion: req.appVersion,
        osVersion: req.osVersion,
      });
      return create(RegisterDeviceResponseSchema, { device: deviceMessage(device) });
    },
    async listDevices(_req, ctx) {
      const list = await devices.list(authedCallerOf(ctx));
      return create(ListDevicesResponseSchema, { devices: list.map(deviceMessage) });
    },
    async deactivateDevice(req, ctx) {
      await devices.deactivate(authedCallerOf(ctx), req.deviceId);
      return create(DeactivateDeviceResponseSchema);
    },
  };
}
