// examples/grpc-js-caller.ts (an internal backend on @grpc/grpc-js + @grpc/proto-loader)
// against the real server.
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { getMe } from "../../examples/grpc-js-caller.js";
import { signUp } from "../support/clients.js";
import { startTestServer, type TestServer } from "../support/server.js";

describe("grpc-js example caller", () => {
  let server: TestServer;
  let address: string;

  before(async () => {
    server = await startTestServer();
    address = `127.0.0.1:${server.port}`;
  });
  after(async () => {
    await server?.close();
  });

  it("gets the user with snake_case field names", async () => {
    const user = await signUp(server.url);
    const me = await getMe(address, user.accessToken);
    expect(me).to.include({ id: user.userId, username: user.username, email: "", phone_number: user.phone, is_active: true, is_staff: false });
    expect(Number(me.date_joined?.seconds)).to.be.closeTo(Date.now() / 1000, 60);
    expect(me).to.not.have.property("phoneNumber");
  });

  it("fails with UNAUTHENTICATED for a bad token", async () => {
    const err = await getMe(address, "not-a-token").then(
      () => expect.fail("expected GetMe to fail"),
      (e: grpc.ServiceError) => e,
    );
    expect(err.code).to.equal(grpc.status.UNAUTHENTICATED);
  });
});
