// The console's one way to the gateway: refunds.v1.RefundService over gRPC-Web on the page's
// own origin (the HTTP listener routes the service's paths to the same service, with the same
// authentication, as the gRPC listener), with the key the operator entered.
//
// The key lives in memory, and in sessionStorage only when the operator asks to keep it for
// this tab: nothing outlives the browser session. It is sent as `authorization: Bearer <key>`;
// with no key the calls go without one (a gateway with no tenants runs open).

import { createClient, type Client, ConnectError, Code, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { RefundService } from "./gen/refunds/v1/refund_service_pb";
import { BadRequestSchema, ErrorInfoSchema } from "./gen/google/rpc/error_details_pb";

const STORAGE_KEY = "refund-gateway.console.key";

let key = "";

/** The key the console was given in this tab, if the operator asked to keep it. */
export function storedKey(): string {
  try {
    return sessionStorage.getItem(STORAGE_KEY) ?? "";
  } catch {
    return "";
  }
}

/** Uses `next` from now on; keeps it in sessionStorage only when `remember` is set. */
export function setKey(next: string, remember: boolean): void {
  key = next.trim();
  try {
    if (remember && key !== "") {
      sessionStorage.setItem(STORAGE_KEY, key);
    } else {
      sessionStorage.removeItem(STORAGE_KEY);
    }
  } catch {
    // Storage refused (private mode): the key stays in memory only.
  }
}

export function hasKey(): boolean {
  return key !== "";
}

const withKey: Interceptor = (next) => async (req) => {
  if (key !== "") {
    req.header.set("authorization", `Bearer ${key}`);
  }
  return next(req);
};

export const api: Client<typeof RefundService> = createClient(
  RefundService,
  createGrpcWebTransport({
    baseUrl: window.location.origin,
    useBinaryFormat: true,
    interceptors: [withKey],
  }),
);

/** An API error as a person reads it. */
export interface Problem {
  /** The gRPC code as its canonical name: `PERMISSION_DENIED`. */
  code: string;
  /** The ErrorInfo reason, when the gateway sent one: `OPERATOR_ONLY`. */
  reason: string;
  message: string;
  /** BadRequest field violations: `note: is required`. */
  violations: string[];
  /** ErrorInfo metadata. */
  metadata: Record<string, string>;
  connectCode: Code;
}

/** `PermissionDenied` -> `PERMISSION_DENIED`. */
function codeName(code: Code): string {
  return (Code[code] ?? "UNKNOWN").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

export function problem(err: unknown): Problem {
  const e = ConnectError.from(err);
  const info = e.findDetails(ErrorInfoSchema)[0];
  const violations = e
    .findDetails(BadRequestSchema)
    .flatMap((b) => b.fieldViolations.map((v) => `${v.field}: ${v.description}`));
  return {
    code: codeName(e.code),
    reason: info?.reason ?? "",
    message: e.rawMessage,
    violations,
    metadata: info?.metadata ?? {},
    connectCode: e.code,
  };
}

/** One line: `PERMISSION_DENIED · OPERATOR_ONLY: only operator keys may approve refunds`. */
export function describe(err: unknown): string {
  const p = problem(err);
  const head = p.reason ? `${p.code} · ${p.reason}` : p.code;
  const tail = p.violations.length ? ` (${p.violations.join("; ")})` : "";
  return `${head}: ${p.message}${tail}`;
}
