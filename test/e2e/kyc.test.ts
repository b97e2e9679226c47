// KycService end to end: the real server on a free port, real clients (Connect JSON over
// HTTP/1.1, gRPC through connect-node, @grpc/grpc-js, REST), real PostgreSQL and Redis;
// users signed up through the OTP flow, staff made by setting users.is_staff.
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import {
  DocumentType,
  KycDecision,
  KycService,
  KycStatus,
  ListKycSubmissionsRequestSchema,
  ListKycSubmissionsResponseSchema,
  ReviewKycRequestSchema,
  ReviewKycResponseSchema,
  SubmitKycRequestSchema,
  SubmitKycResponseSchema,
  type SubmitKycRequest,
} from "../../gen/identity/v1/kyc_pb.js";
import { failure, violatedFields } from "../support/failures.js";
import { bearer, bearerMetadata, clientFor, grpcJsClient, grpcUnary, signUp, type SignedUp, type Wire } from "../support/clients.js";
import { startTestServer, type TestServer } from "../support/server.js";

let numberCounter = 0;
/** A passport number unique in this run, so that searching the logs for it means something. */
const passportNumber = () => `E${String(Date.now() % 1e5).padStart(5, "0")}${String(++numberCounter).padStart(3, "0")}`;

type SubmitFields = Omit<SubmitKycRequest, "$typeName" | "$unknown">;
const passport = (documentNumber = passportNumber()): SubmitFields => ({
  documentType: DocumentType.PASSPORT,
  documentNumber,
  documentFrontUrl: "https://docs.example.com/front.jpg",
  documentBackUrl: "",
});

describe("KycService end to end", function () {
  let server: TestServer;
  let staff: SignedUp;
  const submittedNumbers: string[] = [];

  before(async () => {
    server = await startTestServer();
    staff = await signUp(server.url);
    // checkPrincipal reads users.is_staff on every call: the token already issued now acts as staff.
    await server.app.stores.models.User.update({ isStaff: true }, { where: { id: staff.userId } });
  });
  after(() => server?.close());

  const WIRES: Wire[] = ["connect-json-h1", "grpc"];
  for (const wire of WIRES) {
    describe(`over ${wire}`, () => {
      const kyc = () => clientFor(KycService, server.url, wire);
      const asStaff = () => bearer(staff.accessToken);

      it("runs the state machine: submit, refuse a resubmission, reject, resubmit, approve", async () => {
        const user = await signUp(server.url);
        const auth = bearer(user.accessToken);
        expect((await kyc().getKycStatus({}, auth)).status).to.equal(KycStatus.NOT_SUBMITTED);

        const number = passportNumber();
        submittedNumbers.push(number);
        const { kyc: submitted } = await kyc().submitKyc(passport(` ${number.toLowerCase()} `), auth);
        expect(submitted).to.deep.include({ userId: user.userId, status: KycStatus.PENDING, documentType: DocumentType.PASSPORT, documentNumber: "" });
        expect(submitted!.documentNumberMasked).to.equal(`${"*".repeat(number.length - 4)}${number.slice(-4)}`);
        expect(submitted!.submittedAt).to.not.equal(undefined);
        expect((await kyc().getKycStatus({}, auth)).status).to.equal(KycStatus.PENDING);
        expect((await failure(kyc().submitKyc(passport(), auth))).code).to.equal(Code.FailedPrecondition);

        const noReason = await failure(kyc().reviewKyc({ userId: user.userId, decision: KycDecision.REJECT }, asStaff()));
        expect(noReason.code).to.equal(Code.InvalidArgument);
        expect(violatedFields(noReason)).to.deep.equal(["rejection_reason"]);

        const { kyc: rejected } = await kyc().reviewKyc({ userId: user.userId, decision: KycDecision.REJECT, rejectionReason: "Photo is blurred" }, asStaff());
        expect(rejected).to.deep.include({ status: KycStatus.REJECTED, rejectionReason: "Photo is blurred", reviewedBy: staff.userId, documentNumber: number });
        expect(await kyc().getKycStatus({}, auth)).to.deep.include({ status: KycStatus.REJECTED, rejectionReason: "Photo is blurred", documentType: DocumentType.PASSPORT });

        await kyc().submitKyc(
          { documentType: DocumentType.NATIONAL_ID, documentNumber: "ID1234567", documentFrontUrl: "https://docs.example.com/f.jpg", documentBackUrl: "https://docs.example.com/b.jpg" },
          auth,
        );
        const { kyc: approved } = await kyc().reviewKyc({ userId: user.userId, decision: KycDecision.APPROVE }, asStaff());
        expect(approved).to.deep.include({ status: KycStatus.APPROVED, documentType: DocumentType.NATIONAL_ID, documentNumber: "ID1234567", rejectionReason: "" });
        expect(approved!.verifiedAt).to.not.equal(undefined);
        const status = await kyc().getKycStatus({}, auth);
        expect(status.status).to.equal(KycStatus.APPROVED);
        expect(status.verifiedAt).to.deep.equal(approved!.verifiedAt);

        expect((await failure(kyc().reviewKyc({ userId: user.userId, decision: KycDecision.APPROVE }, asStaff()))).code).to.equal(Code.FailedPrecondition);
        expect((await failure(kyc().submitKyc(passport(), auth))).code).to.equal(Code.FailedPrecondition);
      });

      it("SubmitKyc names every bad field", async () => {
        const user = await signUp(server.url);
        const err = await failure(kyc().submitKyc({ documentType: DocumentType.NATIONAL_ID, documentNumber: "1", documentFrontUrl: "http://x.example.com/f.jpg", documentBackUrl: "" }, bearer(user.accessToken)));
        expect(err.code).to.equal(Code.InvalidArgument);
        expect(violatedFields(err)).to.deep.equal(["document_number", "document_front_url", "document_back_url"]);
        const unspecified = await failure(kyc().submitKyc({ ...passport(), documentType: DocumentType.UNSPECIFIED }, bearer(user.accessToken)));
        expect(violatedFields(unspecified)).to.deep.equal(["document_type"]);
      });

      it("ListKycSubmissions pages by status with full numbers for staff", async () => {
        const users = [await signUp(server.url), await signUp(server.url), await signUp(server.url)];
        const numbers = new Map<string, string>();
        for (const u of users) {
          const number = passportNumber();
          numbers.set(u.userId, number);
          submittedNumbers.push(number);
          await kyc().submitKyc(passport(number), bearer(u.accessToken));
        }
        const seen: string[] = [];
        let pageToken = "";
        do {
          const page = await kyc().listKycSubmissions({ status: KycStatus.PENDING, pageSize: 2, pageToken }, asStaff());
          expect(page.submissions.length).to.be.at.most(2);
          for (const s of page.submissions) {
            expect(s.status).to.equal(KycStatus.PENDING);
            if (numbers.has(s.userId)) expect(s.documentNumber).to.equal(numbers.get(s.userId));
            seen.push(s.userId);
          }
          pageToken = page.nextPageToken;
        } while (pageToken);
        expect(seen).to.include.members(users.map((u) => u.userId));
        expect(new Set(seen).size).to.equal(seen.length);

        const badToken = await failure(kyc().listKycSubmissions({ pageToken: "not-a-token" }, asStaff()));
        expect(badToken.code).to.equal(Code.InvalidArgument);
        expect(violatedFields(badToken)).to.deep.equal(["page_token"]);
        expect((await failure(kyc().listKycSubmissions({ pageSize: 101 }, asStaff()))).code).to.equal(Code.InvalidArgument);
      });

      it("keeps the staff methods from normal users and answers not_found for unknown users", async () => {
        const user = await signUp(server.url);
        await kyc().submitKyc(passport(), bearer(user.accessToken));
        const other = await signUp(server.url);
        expect((await failure(kyc().listKycSubmissions({}, bearer(other.accessToken)))).code).to.equal(Code.PermissionDenied);
        expect((await failure(kyc().reviewKyc({ userId: user.userId, decision: KycDecision.APPROVE }, bearer(other.accessToken)))).code).to.equal(Code.PermissionDenied);
        expect((await kyc().getKycStatus({}, bearer(user.accessToken))).status).to.equal(KycStatus.PENDING);

        expect((await failure(kyc().reviewKyc({ userId: other.userId, decision: KycDecision.APPROVE }, asStaff()))).code).to.equal(Code.NotFound);
        expect((await failure(kyc().reviewKyc({ userId: "00000000-0000-4000-8000-000000000000", decision: KycDecision.APPROVE }, asStaff()))).code).to.equal(Code.NotFound);
        expect((await failure(kyc().getKycStatus({}))).code).to.equal(Code.Unauthenticated);
      });
    });
  }

  describe("over @grpc/grpc-js", () => {
    let client: grpc.Client;
    before(() => {
      client = grpcJsClient(server.port);
    });
    after(() => client.close());

    const path = (method: string) => `/identity.v1.KycService/${method}`;

    it("serves SubmitKyc, ListKycSubmissions and ReviewKyc, and refuses staff methods to users", async () => {
      const user = await signUp(server.url);
      const number = passportNumber();
      submittedNumbers.push(number);
      const { kyc: submitted } = await grpcUnary(client, path("SubmitKyc"), SubmitKycRequestSchema, SubmitKycResponseSchema, { $typeName: "identity.v1.SubmitKycRequest", ...passport(number) }, bearerMetadata(user.accessToken));
      expect(submitted).to.deep.include({ status: KycStatus.PENDING, documentNumber: "" });

      const denied = (await grpcUnary(client, path("ListKycSubmissions"), ListKycSubmissionsRequestSchema, ListKycSubmissionsResponseSchema, { $typeName: "identity.v1.ListKycSubmissionsRequest", status: KycStatus.PENDING, pageSize: 0, pageToken: "" }, bearerMetadata(user.accessToken)).catch((e: unknown) => e)) as grpc.ServiceError;
      expect(denied.code).to.equal(grpc.status.PERMISSION_DENIED);

      const listed = await grpcUnary(client, path("ListKycSubmissions"), ListKycSubmissionsRequestSchema, ListKycSubmissionsResponseSchema, { $typeName: "identity.v1.ListKycSubmissionsRequest", status: KycStatus.PENDING, pageSize: 100, pageToken: "" }, bearerMetadata(staff.accessToken));
      expect(listed.submissions.find((s) => s.userId === user.userId)).to.deep.include({ documentNumber: number });

      const noReason = (await grpcUnary(client, path("ReviewKyc"), ReviewKycRequestSchema, ReviewKycResponseSchema, { $typeName: "identity.v1.ReviewKycRequest", userId: user.userId, decision: KycDecision.REJECT, rejectionReason: "" }, bearerMetadata(staff.accessToken)).catch((e: unknown) => e)) as grpc.ServiceError;
      expect(noReason.code).to.equal(grpc.status.INVALID_ARGUMENT);
      const { kyc: approved } = await grpcUnary(client, path("ReviewKyc"), ReviewKycRequestSchema, ReviewKycResponseSchema, { $typeName: "identity.v1.ReviewKycRequest", userId: user.userId, decision: KycDecision.APPROVE, rejectionReason: "" }, bearerMetadata(staff.accessToken));
      expect(approved).to.deep.include({ status: KycStatus.APPROVED, reviewedBy: staff.userId });
    });
  });

  describe("over REST", () => {
    it("POST /api/users/kyc and GET /api/users/kyc/status with snake_case bodies; staff-only admin paths", async () => {
      const user = await signUp(server.url);
      const headers = { authorization: `Bearer ${user.accessToken}`, "content-type": "application/json" };
      const number = passportNumber();
      submittedNumbers.push(number);
      const body = { document_type: "DOCUMENT_TYPE_PASSPORT", document_number: number, document_front_url: "https://docs.example.com/front.jpg" };
      const posted = await fetch(`${server.url}/api/users/kyc`, { method: "POST", headers, body: JSON.stringify(body) });
      expect(posted.status).to.equal(200);
      expect(await posted.json()).to.deep.include({ status: "KYC_STATUS_PENDING", document_number_masked: `${"*".repeat(number.length - 4)}${number.slice(-4)}` });
      const status = await fetch(`${server.url}/api/users/kyc/status`, { headers });
      expect(await status.json()).to.deep.include({ status: "KYC_STATUS_PENDING" });
      const again = await fetch(`${server.url}/api/users/kyc`, { method: "POST", headers, body: JSON.stringify(body) });
      expect(again.status).to.equal(400);
      expect(await again.json()).to.have.property("code", "failed_precondition");
      expect((await fetch(`${server.url}/api/admin/kyc`, { headers })).status).to.equal(403);
      const review = await fetch(`${server.url}/api/admin/kyc/${user.userId}/review`, {
        method: "POST",
        headers: { ...headers, authorization: `Bearer ${staff.accessToken}` },
        body: JSON.stringify({ decision: "KYC_DECISION_REJECT", rejection_reason: "Expired" }),
      });
      expect(review.status).to.equal(200);
      expect(await review.json()).to.deep.include({ status: "KYC_STATUS_REJECTED", rejection_reason: "Expired", document_number: number });
    });
  });

  // A suite of its own: mocha runs a suite's own tests before its nested suites.
  describe("afterwards", () => {
    it("never wrote a document number to the server's logs", () => {
      expect(submittedNumbers.length).to.be.at.least(4);
      const logged = JSON.stringify(server.logs);
      for (const number of submittedNumbers) expect(logged).to.not.include(number);
    });
  });
});
