// Domain errors: what went wrong in the rules, free of transport types. The server's
// error interceptor maps them to Connect codes (and REST statuses).

export type ErrorKind =
  | "invalid_argument"
  | "unauthenticated"
  | "permission_denied"
  | "not_found"
  | "already_exists"
  | "failed_precondition"
  | "resource_exhausted"
  | "unavailable";

export interface FieldViolation {
  field: string;
  description: string;
}

export class DomainError extends Error {
  override name = "DomainError";
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly extra: { violations?: FieldViolation[]; retryAfterSeconds?: number } = {},
  ) {
    super(message);
  }
}

export const invalid = (violations: FieldViolation[], message?: string): DomainError =>
  new DomainError("invalid_argument", message ?? violations.map((v) => `${v.field}: ${v.description}`).join("; "), { violations });

export const unauthenticated = (message = "Authentication required"): DomainError => new DomainError("unauthenticated", message);
export const permissionDenied = (message = "Permission denied"): DomainError => new DomainError("permission_denied", message);
export const notFound = (message: string): DomainError => new DomainError("not_found", message);
export const alreadyExists = (message: string): DomainError => new DomainError("already_exists", message);
export const failedPrecondition = (message: string): DomainError => new DomainError("failed_precondition", message);
export const exhausted = (message: string, retryAfterSeconds: number): DomainError =>
  new DomainError("resource_exhausted", message, { retryAfterSeconds: Math.max(1, Math.ceil(retryAfterSeconds)) });

/** Collects field violations and throws them together. */
export class Violations {
  readonly list: FieldViolation[] = [];
  add(field: string, description: string): this {
    this.list.push({ field, description });
    return this;
  }
  throwIfAny(): void {
    if (this.list.length) throw invalid(this.list);
  }
}
