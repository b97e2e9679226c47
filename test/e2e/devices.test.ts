// DeviceService end to end: the real server on a free port, real clients (Connect JSON over
// HTTP/1.1, gRPC through connect-node, @grpc/grpc-js, REST), real PostgreSQL and Redis;
// users signed up through the OTP flow.
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import { DeviceType } from "../../gen/identity/v1/common_pb.js";
import {
  DeviceService,
  ListDevicesRequestSchema,
  ListDevicesResponseSchema,
  RegisterDeviceRequestSchema,
  RegisterDeviceResponseSchema,
  type RegisterDeviceRequest,
} from "../../gen/identity/v1/device_pb.js";
import { failure, violatedFields } from "../support/failures.js";
import { bearer, bearerMetadata, clientFor, grpcJsClient, grpcUnary, signUp, type Wire } from "../support/clients.js";
import { startTestServer, type TestServer } from "../support/server.js";

type RegisterFields = Omit<RegisterDeviceRequest, "$typeName" | "$unknown">;
const registration = (extra: Partial<RegisterFields> = {}): RegisterFields => ({
  deviceId: `device-${randomUUID()}`,
  fcmToken: `fcm-${randomUUID()}`,
  deviceType: DeviceType.IOS,
  deviceName: "iPhone",
  appVersion: "3.0.1",
  osVersion: "iOS 18",
  ...extra,
});

describe("DeviceService end to end", function () {
  let server: TestServer;

  before(async () => {
    server = await startTestServer();
  });

  after(() => server?.close());

  const WIRES: Wire[] = ["connect-json-h1", "grpc"];
  for (const wire of WIRES) {
    describe(`over ${wire}`, () => {
      const devices = () => clientFor(DeviceService, server.url, wire);

      it("RegisterDevice upserts; ListDevices lists; DeactivateDevice removes from the list", async () => {
        const user = await signUp(server.url);
        const auth = bearer(user.accessToken);
        const first = registration();
        const { device } = await devices().registerDevice(first, auth);
        expect(device).to.deep.include({ deviceId: first.deviceId, fcmToken: first.fcmToken, deviceType: DeviceType.IOS, deviceName: "iPhone", isActive: true });
        expect(device!.lastUsed).to.not.equal(undefined);
        expect(device!.createdAt).to.not.equal(undefined);

        const updated = await devices().registerDevice({ ...first, deviceName: "iPhone 16", appVersion: "3.1.0" }, auth);
        expect(updated.device).to.deep.include({ deviceId: first.deviceId, deviceName: "iPhone 16", appVersion: "3.1.0" });
        const second = registration({ deviceType: DeviceType.ANDROID });
        await devices().registerDevice(second, auth);

        const listed = await devices().listDevices({}, auth);
        expect(listed.devices.map((d) => [d.deviceId, d.deviceType])).to.deep.equal([
          [second.deviceId, DeviceType.ANDROID],
          [first.deviceId, DeviceType.IOS],
        ]);

        await devices().deactivateDevice({ deviceId: second.deviceId }, auth);
        expect((await devices().listDevices({}, auth)).devices.map((d) => d.deviceId)).to.deep.equal([first.deviceId]);
      });

      it("moves an FCM token to the newest claimant, even another user's device", async () => {
        const a = await signUp(server.url);
        const b = await signUp(server.url);
        const fcmToken = `fcm-${randomUUID()}`;
        await devices().registerDevice(registration({ fcmToken }), bearer(a.accessToken));
        const { device } = await devices().registerDevice(registration({ fcmToken }), bearer(b.accessToken));
        expect(device).to.deep.include({ fcmToken, isActive: true });
        expect((await devices().listDevices({}, bearer(a.accessToken))).devices).to.deep.equal([]);
        expect((await devices().listDevices({}, bearer(b.accessToken))).devices).to.have.length(1);
      });

      it("answers not_found for another user's device and invalid_argument for bad fields", async () => {
        const a = await signUp(server.url);
        const b = await signUp(server.url);
        const mine = registration();
        await devices().registerDevice(mine, bearer(a.accessToken));
        expect((await failure(devices().deactivateDevice({ deviceId: mine.deviceId }, bearer(b.accessToken)))).code).to.equal(Code.NotFound);
        expect((await devices().listDevices({}, bearer(a.accessToken))).devices.map((d) => d.deviceId)).to.deep.equal([mine.deviceId]);

        const bad = await failure(devices().registerDevice(registration({ deviceType: DeviceType.UNSPECIFIED, fcmToken: "" }), bearer(a.accessToken)));
        expect(bad.code).to.equal(Code.InvalidArgument);
        expect(violatedFields(bad)).to.deep.equal(["fcm_token", "device_type"]);
      });

      it("is unauthenticated without a token", async () => {
        expect((await failure(devices().listDevices({}))).code).to.equal(Code.Unauthenticated);
        expect((await failure(devices().registerDevice(registration()))).code).to.equal(Code.Unauthenticated);
      });
    });
  }

  describe("over @grpc/grpc-js", () => {
    let client: grpc.Client;
    before(() => (client = grpcJsClient(server.port)));
    after(() => client?.close());

    it("RegisterDevice and ListDevices", async () => {
      const user = await signUp(server.url);
      const fields = registration({ deviceType: DeviceType.WEB });
      const { device } = await grpcUnary(
        client,
        "/identity.v1.DeviceService/RegisterDevice",
        RegisterDeviceRequestSchema,
        RegisterDeviceResponseSchema,
        { $typeName: "identity.v1.RegisterDeviceRequest", ...fields },
        bearerMetadata(user.accessToken),
      );
      expect(device).to.deep.include({ deviceId: fields.deviceId, deviceType: DeviceType.WEB, isActive: true });
      const listed = await grpcUnary(client, "/identity.v1.DeviceService/ListDevices", ListDevicesRequestSchema, ListDevicesResponseSchema, { $typeName: "identity.v1.ListDevicesRequest" }, bearerMetadata(user.accessToken));
      expect(listed.devices.map((d) => d.deviceId)).to.deep.equal([fields.deviceId]);
      const unauthenticated = await grpcUnary(client, "/identity.v1.DeviceService/ListDevices", ListDevicesRequestSchema, ListDevicesResponseSchema, { $typeName: "identity.v1.ListDevicesRequest" }).then(
        () => undefined,
        (e: grpc.ServiceError) => e.code,
      );
      expect(unauthenticated).to.equal(grpc.status.UNAUTHENTICATED);
    });
  });

  describe("over REST", () => {
    it("POST /api/auth/device, GET /api/users/devices, DELETE /api/users/devices/{device_id}", async () => {
      const user = await signUp(server.url);
      const headers = { "content-type": "application/json", authorization: `Bearer ${user.accessToken}` };
      const deviceId = `device-${randomUUID()}`;
      const registered = await fetch(`${server.url}/api/auth/device`, {
        method: "POST",
        headers,
        body: JSON.stringify({ device_id: deviceId, fcm_token: `fcm-${randomUUID()}`, device_type: "DEVICE_TYPE_ANDROID", device_name: "Pixel" }),
      });
      expect(registered.status).to.equal(200);
      // response_body: "device" — the Device itself, snake_case.
      expect(await registered.json()).to.deep.include({ device_id: deviceId, device_type: "DEVICE_TYPE_ANDROID", device_name: "Pixel", is_active: true });
      const listed = (await (await fetch(`${server.url}/api/users/devices`, { headers })).json()) as { devices: Array<{ device_id: string }> };
      expect(listed.devices.map((d) => d.device_id)).to.deep.equal([deviceId]);
      const deleted = await fetch(`${server.url}/api/users/devices/${encodeURIComponent(deviceId)}`, { method: "DELETE", headers });
      expect(deleted.status).to.equal(200);
      const again = await fetch(`${server.url}/api/users/devices/${encodeURIComponent(`device-${randomUUID()}`)}`, { method: "DELETE", headers });
      expect(again.status).to.equal(404);
      expect(((await (await fetch(`${server.url}/api/users/devices`, { headers })).json()) as { devices?: unknown[] }).devices ?? []).to.deep.equal([]);
    });
  });
});
