// Conversions between protobuf types and domain values shared by the rpc mappers.
import { timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { create, type JsonObject } from "@bufbuild/protobuf";
import { DeviceType, UserSchema, type User } from "../../gen/identity/v1/common_pb.js";
import type { UserView } from "../domain/users.js";
import type { DeviceTypeValue } from "../store/models/user-device.js";

/** A Timestamp, or unset for a missing date. */
/** A jsonb column as a google.protobuf.Struct field (plain JSON objects in protobuf-es). */
export function jsonStruct(values: Record<string, unknown> | null): JsonObject | undefined {
  return values ? (values as JsonObject) : undefined;
}

export function optionalTimestamp(d: Date | null | undefined): Timestamp | undefined {
  return d ? timestampFromDate(d) : undefined;
}

const DEVICE_TYPE_TO_PROTO: Record<DeviceTypeValue, DeviceType> = { ANDROID: DeviceType.ANDROID, IOS: DeviceType.IOS, WEB: DeviceType.WEB };

/** The domain's device type; undefined for DEVICE_TYPE_UNSPECIFIED (and unknown numbers). */
export function deviceTypeFromProto(t: DeviceType): DeviceTypeValue | undefined {
  return (Object.keys(DEVICE_TYPE_TO_PROTO) as DeviceTypeValue[]).find((k) => DEVICE_TYPE_TO_PROTO[k] === t);
}

export function deviceTypeToProto(t: DeviceTypeValue | null | undefined): DeviceType {
  return t ? DEVICE_TYPE_TO_PROTO[t] : DeviceType.UNSPECIFIED;
}

/** The User message of an account. */
export function userMessage(u: UserView): User {
  return create(UserSchema, {
    id: u.id,
    username: u.username,
    email: u.email,
    phoneNumber: u.phoneNumber,
    isActive: u.isActive,
    isStaff: u.isStaff,
    dateJoined: timestampFromDate(u.dateJoined),
    lastLogin: optionalTimestamp(u.lastLogin),
  });
}
