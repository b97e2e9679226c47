// The staff console (/console/) driven in a real browser: Debian's Chromium through
// playwright-core, against the real server (built console, real API, real stores). Each
// step is checked through the API afterwards, and each page is screenshotted into
// .tmp/screenshots (git-ignored) for a person to look at.
import { Code } from "@connectrpc/connect";
import { expect } from "chai";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { buildConsole } from "../../scripts/build-console.js";
import { AdminService } from "../../gen/identity/v1/admin_pb.js";
import { UserAuthService } from "../../gen/identity/v1/auth_pb.js";
import { DocumentType, KycService, KycStatus } from "../../gen/identity/v1/kyc_pb.js";
import { auditCount, rest, rows, signUpWithEmail } from "../support/account.js";
import { bearer, clientFor, signUp, type SignedUp } from "../support/clients.js";
import { codeOf } from "../support/failures.js";
import { startTestServer, TEST_CODE, type TestServer } from "../support/server.js";

const CHROMIUM = "/usr/bin/chromium";
// STACK-NOTES.md; Playwright adds a fresh --user-data-dir of its own to every launch.
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];
const SHOTS = path.join(process.cwd(), ".tmp", "screenshots");

describe("Staff console in Chromium", function () {
  this.timeout(180_000);
  let server: TestServer;
  let browser: Browser;
  let staff: SignedUp;
  const cspViolations: string[] = [];

  before(async function () {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`);
    mkdirSync(SHOTS, { recursive: true });
    // The same build as `npm run build`; the server reads dist/console when it starts.
    await buildConsole();
    server = await startTestServer({ OTP_RESEND_SECONDS: "0" });
    staff = await signUp(server.url);
    await server.app.stores.models.User.update({ isStaff: true }, { where: { id: staff.userId } });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  async function newPage(): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport: { width: 1366, height: 850 } });
    const page = await context.newPage();
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    return { context, page };
  }

  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

  async function signInAs(page: Page, phone: string): Promise<void> {
    await page.goto(`${server.url}/console/`);
    await page.getByLabel("E-mail or phone number").fill(phone);
    await page.getByRole("button", { name: "Send code" }).click();
    await page.getByLabel("One-time code").fill(TEST_CODE);
    await page.getByRole("button", { name: "Sign in" }).click();
  }

  const nav = (page: Page, name: string) => page.getByRole("navigation", { name: "Console" }).getByRole("link", { name });

  /** Everything the page keeps in Web Storage. */
  const storage = (page: Page) => page.evaluate(() => JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage } }));

  it("serves the built console with a strict CSP, X-Frame-Options and Referrer-Policy, no inline script", async () => {
    const res = await fetch(`${server.url}/console/`);
    expect(res.status).to.equal(200);
    expect(res.headers.get("content-security-policy")).to.match(/default-src 'none'/).and.match(/script-src 'self';/).and.match(/frame-ancestors 'none'/);
    expect(res.headers.get("content-security-policy")).to.not.include("unsafe-inline");
    expect(res.headers.get("x-frame-options")).to.equal("DENY");
    expect(res.headers.get("referrer-policy")).to.equal("no-referrer");
    const html = await res.text();
    expect(html.match(/<script[^>]*>/g)).to.deep.equal(['<script type="module" src="./app.js">']);
    expect(html).to.not.match(/style=/);
    const redirect = await fetch(`${server.url}/console`, { redirect: "manual" });
    expect(redirect.status).to.equal(308);
    expect(redirect.headers.get("location")).to.equal("/console/");
    expect((await fetch(`${server.url}/console/app.js`)).headers.get("content-type")).to.match(/javascript/);
  });

  it("tells a non-staff account plainly that it is not staff, and keeps no token", async () => {
    const user = await signUp(server.url);
    const { context, page } = await newPage();
    try {
      await signInAs(page, user.phone);
      await expect(await page.getByRole("alert").filter({ hasText: "Not staff" }).textContent({ timeout: 30_000 })).to.include("not a staff account");
      expect(await page.getByRole("navigation", { name: "Console" }).isHidden()).to.equal(true);
      expect(await storage(page)).to.equal('{"local":{},"session":{}}');
      await shot(page, "01-signin-not-staff");
      // The session the sign-in opened was ended at once.
      const live = await rows<{ n: number }>(server, "SELECT count(*)::int AS n FROM sessions WHERE user_id = :id AND revoked_at IS NULL", { id: user.userId });
      expect(live[0]!.n).to.equal(1); // only the sign-up session of the test itself
    } finally {
      await context.close();
    }
  });

  it("says the service is unavailable when it cannot be reached", async () => {
    const { context, page } = await newPage();
    try {
      await page.goto(`${server.url}/console/`);
      // The network refuses the API call, as with the service down.
      await page.route("**/identity.v1.UserAuthService/RequestOtp", (route) => route.abort("connectionrefused"));
      await page.getByLabel("E-mail or phone number").fill("+15550000000");
      await page.getByRole("button", { name: "Send code" }).click();
      await page.getByRole("alert").filter({ hasText: "Service unavailable" }).waitFor({ timeout: 30_000 });
      await shot(page, "00-service-unavailable");
    } finally {
      await context.close();
    }
  });

  describe("signed in as staff", () => {
    let context: BrowserContext;
    let page: Page;
    let first: SignedUp;
    let second: SignedUp;
    let person: SignedUp & { email: string };

    before(async () => {
      const kyc = clientFor(KycService, server.url);
      first = await signUp(server.url);
      second = await signUp(server.url);
      for (const [u, n] of [[first, "P1234567"], [second, "P7654321"]] as const) {
        await kyc.submitKyc({ documentType: DocumentType.PASSPORT, documentNumber: n, documentFrontUrl: `https://docs.invalid/${n}-front.jpg`, documentBackUrl: "" }, bearer(u.accessToken));
      }
      person = await signUpWithEmail(server.url, `Console.Person.${Date.now()}@Example.com`);
      ({ context, page } = await newPage());
      await signInAs(page, staff.phone);
      await page.getByRole("heading", { name: "KYC queue" }).waitFor({ timeout: 30_000 });
    });
    after(() => context?.close());

    it("shows the KYC queue, oldest first, with a fallback for images that do not load; no token in Web Storage", async () => {
      const articles = page.locator("article.kyc");
      await articles.first().waitFor();
      expect(await articles.count()).to.equal(2);
      expect(await articles.nth(0).textContent()).to.include(first.userId);
      expect(await articles.nth(1).textContent()).to.include(second.userId);
      await page.getByText("The image could not be loaded.").first().waitFor({ timeout: 30_000 });
      expect(await storage(page)).to.equal('{"local":{},"session":{}}');
      await shot(page, "02-kyc-queue");
    });

    it("approves one submission and rejects another with a reason; the queue updates", async () => {
      await page.locator("article.kyc", { hasText: first.userId }).getByRole("button", { name: "Approve" }).click();
      await page.getByRole("status").filter({ hasText: "Approved" }).waitFor({ timeout: 30_000 });
      expect(await page.locator("article.kyc").count()).to.equal(1);
      const card = page.locator("article.kyc", { hasText: second.userId });
      await card.getByLabel("Reason for rejection").fill("The photo is blurred");
      await card.getByRole("button", { name: "Reject" }).click();
      await page.getByText("No submissions are waiting for review.").waitFor({ timeout: 30_000 });
      await shot(page, "03-kyc-queue-empty");
      const kyc = clientFor(KycService, server.url);
      expect((await kyc.getKycStatus({}, bearer(first.accessToken))).status).to.equal(KycStatus.APPROVED);
      expect(await kyc.getKycStatus({}, bearer(second.accessToken))).to.deep.include({ status: KycStatus.REJECTED, rejectionReason: "The photo is blurred" });
    });

    it("finds a user by e-mail prefix and opens their page", async () => {
      await nav(page, "Users").click();
      await page.getByLabel("Username, e-mail or phone starts with").fill(person.email.slice(0, 16).toUpperCase());
      await page.getByRole("button", { name: "Search" }).click();
      await page.getByRole("status").filter({ hasText: "1 user shown." }).waitFor({ timeout: 30_000 });
      await shot(page, "04-users-search");
      await page.getByRole("link", { name: person.username }).click();
      await page.getByRole("heading", { level: 1, name: person.username }).waitFor({ timeout: 30_000 });
      expect(await page.getByRole("heading", { name: "Sessions (1 live)" }).isVisible()).to.equal(true);
      await shot(page, "05-user-page");
    });

    it("adjusts points with an idempotency key chosen for the operator", async () => {
      await page.getByLabel("Points to add (negative to remove)").fill("40");
      await page.getByLabel("Reason (shown to the user)").fill("Support goodwill");
      await page.getByRole("button", { name: "Adjust points" }).click();
      await page.getByRole("status").filter({ hasText: "Adjusted the points by 40." }).waitFor({ timeout: 30_000 });
      const ledger = await rows<{ delta: string; idempotency_key: string; actor_id: string }>(server, "SELECT delta::text, idempotency_key, actor_id FROM points_transactions WHERE user_id = :id", { id: person.userId });
      expect(ledger).to.have.length(1);
      expect(ledger[0]).to.deep.include({ delta: "40", actor_id: staff.userId });
      expect(ledger[0]!.idempotency_key).to.match(/^[0-9a-f-]{36}$/);
    });

    it("revokes the user's sessions; their token is refused", async () => {
      await page.getByRole("button", { name: "Revoke all sessions" }).click();
      await page.getByRole("status").filter({ hasText: "Revoked 1 session." }).waitFor({ timeout: 30_000 });
      expect(await page.getByRole("heading", { name: "Sessions (0 live)" }).isVisible()).to.equal(true);
      expect(await codeOf(clientFor(UserAuthService, server.url).getMe({}, bearer(person.accessToken)))).to.equal(Code.Unauthenticated);
      await shot(page, "06-user-sessions-revoked");
    });

    it("deactivates the user with a reason, and shows it in the activity", async () => {
      await page.getByLabel("Reason for deactivation").fill("Confirmed account takeover");
      await page.getByRole("button", { name: "Deactivate account" }).click();
      await page.getByRole("status").filter({ hasText: "Account deactivated" }).waitFor({ timeout: 30_000 });
      await page.getByRole("button", { name: "Reactivate account" }).waitFor();
      expect(await page.getByRole("cell", { name: "user.deactivated" }).count()).to.equal(1);
      await shot(page, "07-user-deactivated");
      const got = await clientFor(AdminService, server.url).getUser({ userId: person.userId }, bearer(staff.accessToken));
      expect(got.user?.isActive).to.equal(false);
    });

    it("browses the audit log with filters", async () => {
      await nav(page, "Audit log").click();
      await page.getByLabel("User id").fill(person.userId);
      await page.getByLabel("Action").fill("user.deactivated");
      await page.getByRole("button", { name: "Filter" }).click();
      await page.getByRole("status").filter({ hasText: "1 row shown." }).waitFor({ timeout: 30_000 });
      expect(await page.getByRole("link", { name: `staff ${staff.userId.slice(0, 8)}…` }).count()).to.equal(1);
      // More than a page (50 rows): "More" appends the next one.
      while ((await auditCount(server)) <= 50) await signUp(server.url);
      const total = await auditCount(server);
      await page.getByLabel("Action").fill("");
      await page.getByLabel("User id").fill("");
      await page.getByRole("button", { name: "Filter" }).click();
      await page.getByRole("status").filter({ hasText: "50 rows shown." }).waitFor({ timeout: 30_000 });
      await shot(page, "08-audit-log");
      await page.getByRole("button", { name: "More" }).click();
      const shown = Math.min(total, 100);
      await page.getByRole("status").filter({ hasText: `${shown} rows shown.` }).waitFor({ timeout: 30_000 });
      expect(await page.locator(".results tbody tr").count()).to.equal(shown);
      expect(await page.getByRole("button", { name: "More" }).isVisible()).to.equal(total > 100);
    });

    it("says the session expired when the server ends it, and keeps no token", async () => {
      await server.app.stores.sequelize.query("UPDATE sessions SET revoked_at = now() WHERE user_id = :id AND revoked_at IS NULL", { replacements: { id: staff.userId } });
      await nav(page, "Users").click();
      await page.getByRole("alert").filter({ hasText: "Session expired" }).waitFor({ timeout: 30_000 });
      await page.getByRole("heading", { name: "Staff sign-in" }).waitFor();
      expect(await storage(page)).to.equal('{"local":{},"session":{}}');
      await shot(page, "09-session-expired");
      // The staff user's own token is dead too: nothing the page shows changes that.
      expect((await rest(server, "GET", "/api/admin/users", { token: staff.accessToken })).status).to.equal(401);
    });
  });

  describe("afterwards", () => {
    it("loaded every page without a Content-Security-Policy violation", () => {
      expect(cspViolations).to.deep.equal([]);
    });
  });
});
