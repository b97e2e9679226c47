// Delivery adapters against real local peers: SMTP, the HTTP Messages API, and a server
// that never answers.
import { expect } from "chai";
import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { createEmailNotifier } from "../../src/notify/email.js";
import { createSmsNotifier } from "../../src/notify/sms.js";
import { lifetime } from "../../src/notify/templates.js";
import { DeliveryError } from "../../src/notify/types.js";
import { startFakeSms, type FakeSms } from "../support/fake-sms.js";
import { startFakeSmtp, type FakeSmtp } from "../support/fake-smtp.js";

async function deliveryError(p: Promise<unknown>): Promise<DeliveryError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(DeliveryError);
    return err as DeliveryError;
  }
  throw new Error("expected a DeliveryError");
}

describe("notify (integration)", () => {
  let smtp: FakeSmtp;
  let sms: FakeSms;
  before(async () => {
    [smtp, sms] = await Promise.all([startFakeSmtp(), startFakeSms()]);
  });
  after(async () => {
    await Promise.all([smtp.close(), sms.close()]);
  });

  it("states lifetimes in minutes (rounded down), seconds below a minute", () => {
    expect([lifetime(300), lifetime(60), lifetime(119), lifetime(30), lifetime(1)]).to.deep.equal(["5 minutes", "1 minute", "1 minute", "30 seconds", "1 second"]);
  });

  it("e-mail: sends plain messages with a subject", async () => {
    const email = createEmailNotifier({ smtpUrl: smtp.url, from: "Identity <no-reply@example.test>" });
    try {
      await email.sendMessage({ channel: "email", to: "someone@example.com", subject: "Complete your profile", text: "Hello there" });
      const mail = await smtp.waitFor(1);
      expect(mail).to.include({ subject: "Complete your profile", text: "Hello there" });
      expect(mail.to).to.deep.equal(["someone@example.com"]);
    } finally {
      await email.close();
    }
  });

  it("SMS: sends plain messages; a refusal names the status only", async () => {
    const notifier = createSmsNotifier({ apiUrl: `${sms.url}/`, accountSid: "AC1", authToken: "t", from: "Acme" });
    await notifier.sendMessage({ channel: "sms", to: "+12133734253", text: "Your KYC review is done" });
    expect(sms.messages[0]).to.deep.include({ path: "/2010-04-01/Accounts/AC1/Messages.json", user: "AC1", password: "t" });
    expect(sms.messages[0]!.form).to.deep.equal({ To: "+12133734253", From: "Acme", Body: "Your KYC review is done" });
    sms.status = 401;
    const err = await deliveryError(notifier.sendOtp({ channel: "sms", to: "+12133734253", code: "123456", purpose: "LOGIN", ttlSeconds: 300 }));
    expect(err.message).to.equal("sms delivery failed: HTTP 401");
  });

  describe("a provider that never answers", () => {
    let server: Server;
    const sockets: Socket[] = [];
    before(async () => {
      server = createServer((s) => void sockets.push(s)); // accepts, reads nothing, says nothing
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    });
    after(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    });

    it("SMS times out", async () => {
      const { port } = server.address() as AddressInfo;
      const notifier = createSmsNotifier({ apiUrl: `http://127.0.0.1:${port}`, accountSid: "AC1", authToken: "t", from: "Acme", timeoutMs: 200 });
      const err = await deliveryError(notifier.sendOtp({ channel: "sms", to: "+12133734253", code: "123456", purpose: "LOGIN", ttlSeconds: 300 }));
      expect(err.message).to.equal("sms delivery failed: timeout after 200 ms");
    });

    it("e-mail times out waiting for the greeting", async () => {
      const { port } = server.address() as AddressInfo;
      const email = createEmailNotifier({ smtpUrl: `smtp://127.0.0.1:${port}`, from: "x@example.test", timeoutMs: 200 });
      try {
        const err = await deliveryError(email.sendOtp({ channel: "email", to: "someone@example.com", code: "123456", purpose: "LOGIN", ttlSeconds: 300 }));
        expect(err.message).to.match(/^email delivery failed: E[A-Z]+/);
        expect(err.message).not.to.include("someone");
      } finally {
        await email.close();
      }
    });
  });
});
