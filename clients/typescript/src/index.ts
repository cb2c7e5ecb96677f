// The refund-gateway Node client: refunds.v1 messages and the RefundService client for
// @grpc/grpc-js (generated into ./gen by buf.gen.yaml at the repository root), plus the
// decoding of the google.rpc error details every error of the API carries.

import type { ServiceError } from "@grpc/grpc-js";

import { BadRequest, ErrorInfo, RetryInfo } from "./gen/google/rpc/error_details";
import { Status } from "./gen/google/rpc/status";

export * from "./gen/refunds/v1/money";
export * from "./gen/refunds/v1/payment";
export * from "./gen/refunds/v1/provider";
export * from "./gen/refunds/v1/refund";
export * from "./gen/refunds/v1/refund_service";
export { BadRequest, ErrorInfo, RetryInfo, Status };
// Every generated file has these; name the service file's so the exports above agree.
export {
  type DeepPartial,
  type Exact,
  type MessageFns,
  protobufFileName,
  protobufPackage,
} from "./gen/refunds/v1/refund_service";

/** The google.rpc details of an error: ErrorInfo always, BadRequest for invalid fields. */
export interface ErrorDetails {
  errorInfo?: ErrorInfo;
  badRequest?: BadRequest;
  retryInfo?: RetryInfo;
}

/** Decodes the `grpc-status-details-bin` trailer of a failed call. */
export function errorDetails(error: ServiceError): ErrorDetails {
  const details: ErrorDetails = {};
  const [raw] = error.metadata?.get("grpc-status-details-bin") ?? [];
  if (raw === undefined) {
    return details;
  }
  const status = Status.decode(typeof raw === "string" ? Buffer.from(raw, "base64") : raw);
  for (const any of status.details) {
    switch (any.typeUrl) {
      case "type.googleapis.com/google.rpc.ErrorInfo":
        details.errorInfo = ErrorInfo.decode(any.value);
        break;
      case "type.googleapis.com/google.rpc.BadRequest":
        details.badRequest = BadRequest.decode(any.value);
        break;
      case "type.googleapis.com/google.rpc.RetryInfo":
        details.retryInfo = RetryInfo.decode(any.value);
        break;
    }
  }
  return details;
}
