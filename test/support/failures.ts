// Assertions on failed calls of the connect clients.
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";

/** The error a call failed with; throws when the call succeeded. */
export async function failure(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (e) {
    return ConnectError.from(e);
  }
  throw new Error("expected the call to fail");
}

/** The code a call failed with; throws when the call succeeded. */
export async function codeOf(call: Promise<unknown>): Promise<Code> {
  return (await failure(call)).code;
}

/** The fields named by the google.rpc.BadRequest details of an error. */
export const violatedFields = (err: ConnectError): string[] => err.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
