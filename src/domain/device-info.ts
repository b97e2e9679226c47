// The optional device description a session is opened from (Register, Login).
import type { DeviceTypeValue } from "../store/models/user-device.js";
import { Violations } from "./errors.js";

export interface DeviceInfoInput {
  deviceId?: string;
  deviceType?: DeviceTypeValue;
  deviceName?: string;
  appVersion?: string;
  osVersion?: string;
}

const LIMITS: Array<[keyof DeviceInfoInput, string, number]> = [
  ["deviceId", "device.device_id", 255],
  ["deviceName", "device.device_name", 100],
  ["appVersion", "device.app_version", 100],
  ["osVersion", "device.os_version", 100],
];

/** Trims the fields, drops empty ones, and rejects over-long ones. */
export function checkDeviceInfo(device: DeviceInfoInput | undefined, v: Violations): DeviceInfoInput {
  const out: DeviceInfoInput = { deviceType: device?.deviceType };
  for (const [key, field, max] of LIMITS) {
    const value = (device?.[key] ?? "").trim();
    if (value.length > max) v.add(field, `at most ${max} characters`);
    else if (value) (out as Record<string, string>)[key] = value;
  }
  return out;
}
