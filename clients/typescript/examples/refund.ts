// Refund a sandbox payment through refund-gateway, watch it, resume the feed, decode an error.
//
//   cd clients/typescript && npm install && npm run build
//   node dist/examples/refund.js          # a gateway on 127.0.0.1:50051
//
// REFUND_GATEWAY_ADDR and REFUND_GATEWAY_API_KEY override the address and the API key (an
// open gateway, like the embedded default, accepts any key). In your own project, import
// from "@refund-gateway/client" instead of "../src".

import { randomUUID } from "node:crypto";

import { credentials, Metadata, status as Code, type ServiceError } from "@grpc/grpc-js";

import {
  errorDetails,
  RefundReason,
  RefundServiceClient,
  RefundStatus,
  type CreateRefundResponse,
} from "../src";

const addr = process.env.REFUND_GATEWAY_ADDR ?? "127.0.0.1:50051";
const apiKey = process.env.REFUND_GATEWAY_API_KEY ?? "example-key";
const FINAL = [RefundStatus.REFUND_STATUS_SUCCEEDED, RefundStatus.REFUND_STATUS_FAILED, RefundStatus.REFUND_STATUS_CANCELED];

// The API key goes in the metadata of every call, and every call gets a deadline.
function metadata(): Metadata {
  const md = new Metadata();
  md.set("authorization", `Bearer ${apiKey}`);
  return md;
}
const deadline = (seconds: number) => ({ deadline: Date.now() + seconds * 1000 });

async function main(): Promise<void> {
  const client = new RefundServiceClient(addr, credentials.createInsecure());

  // CreateRefund in the sandbox: 1.00 of a 1234.56 PHP PayMongo payment. requestId is the
  // idempotency key: a retry with the same one returns the same refund.
  const created = await new Promise<CreateRefundResponse>((resolve, reject) =>
    client.createRefund(
      {
        requestId: `example-node-${randomUUID()}`,
        provider: "paymongo",
        payment: { paymentId: "pay_SandboxPaid123456", paymentMethodId: "", invoiceId: "" },
        amount: { currencyCode: "PHP", minorUnits: 100 },
        reason: RefundReason.REFUND_REASON_REQUESTED_BY_CUSTOMER,
        description: "order A-1001 returned",
        metadata: {},
      },
      metadata(),
      deadline(10),
      (err, res) => (err ? reject(err) : resolve(res)),
    ),
  );
  const refund = created.refund!;
  console.log(`created ${refund.id}: ${RefundStatus[refund.status]}`);

  // WatchRefund: the current state first, then each change; it ends after a final one.
  let status = refund.status;
  let firstSequence: number | undefined;
  for await (const message of client.watchRefund({ id: refund.id }, metadata(), deadline(30))) {
    status = message.event.refund.status;
    firstSequence ??= message.event.sequence;
    console.log(`  watch: ${RefundStatus[status]}`);
  }
  if (!FINAL.includes(status)) throw new Error(`WatchRefund ended before a final status: ${status}`);

  // WatchRefunds resumed from a saved sequence: the stored events after it, then live with no
  // gap or duplicate. A feed consumer saves the sequence of the last event it handled; here
  // the one just before the first event watched above stands in for it.
  const feed = client.watchRefunds(
    { afterSequence: firstSequence! - 1, provider: "", statuses: [] },
    metadata(),
    deadline(30),
  );
  for await (const message of feed) {
    const event = message.event!;
    if (event.refund!.id === refund.id && FINAL.includes(event.refund!.status)) {
      console.log(`  feed: #${event.sequence} ${refund.id} is final`);
      feed.cancel();
      break;
    }
  }

  // An error, decoded into ErrorInfo and BadRequest.
  const error = await new Promise<ServiceError>((resolve, reject) =>
    client.createRefund(
      { requestId: "", provider: "paymongo", reason: 0, description: "", metadata: {} },
      metadata(),
      deadline(10),
      (err) => (err ? resolve(err) : reject(new Error("an empty requestId must be refused"))),
    ),
  );
  const { errorInfo, badRequest } = errorDetails(error);
  console.log(`error ${Code[error.code]}: reason=${errorInfo?.reason} domain=${errorInfo?.domain}`);
  for (const violation of badRequest?.fieldViolations ?? []) {
    console.log(`  field ${violation.field}: ${violation.description}`);
  }
  if (error.code !== Code.INVALID_ARGUMENT || !badRequest?.fieldViolations.length) {
    throw new Error("expected INVALID_ARGUMENT with field violations");
  }
  client.close();
  console.log("ok");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
