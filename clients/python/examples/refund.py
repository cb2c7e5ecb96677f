"""Refund a sandbox payment through refund-gateway, watch it, resume the feed, decode an error.

    pip install ./clients/python
    python clients/python/examples/refund.py            # a gateway on 127.0.0.1:50051

REFUND_GATEWAY_ADDR and REFUND_GATEWAY_API_KEY override the address and the API key (an
open gateway, like the embedded default, accepts any key).
"""

import os
import sys
import uuid

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from refunds.v1 import money_pb2, refund_pb2
from refunds.v1 import refund_service_pb2 as api
from refunds.v1.refund_service_pb2_grpc import RefundServiceStub

ADDR = os.environ.get("REFUND_GATEWAY_ADDR", "127.0.0.1:50051")
API_KEY = os.environ.get("REFUND_GATEWAY_API_KEY", "example-key")
# The API key goes in the metadata of every call, and every call gets a deadline.
METADATA = [("authorization", f"Bearer {API_KEY}")]
DEADLINE_S = 10
FINAL = {
    refund_pb2.REFUND_STATUS_SUCCEEDED,
    refund_pb2.REFUND_STATUS_FAILED,
    refund_pb2.REFUND_STATUS_CANCELED,
}


def main() -> None:
    with grpc.insecure_channel(ADDR) as channel:
        client = RefundServiceStub(channel)

        # CreateRefund in the sandbox: 1.00 of a 1234.56 PHP PayMongo payment. request_id is
        # the idempotency key: a retry with the same one returns the same refund.
        request = api.CreateRefundRequest(
            request_id=f"example-py-{uuid.uuid4()}",
            provider="paymongo",
            payment=refund_pb2.PaymentReference(payment_id="pay_SandboxPaid123456"),
            amount=money_pb2.Money(currency_code="PHP", minor_units=100),
            reason=refund_pb2.REFUND_REASON_REQUESTED_BY_CUSTOMER,
            description="order A-1001 returned",
        )
        refund = client.CreateRefund(request, metadata=METADATA, timeout=DEADLINE_S).refund
        print(f"created {refund.id}: {refund_pb2.RefundStatus.Name(refund.status)}")

        # WatchRefund: the current state first, then each change; it ends after a final one.
        status, first_sequence = refund.status, None
        for message in client.WatchRefund(
            api.WatchRefundRequest(id=refund.id), metadata=METADATA, timeout=30
        ):
            status = message.event.refund.status
            first_sequence = first_sequence or message.event.sequence
            print(f"  watch: {refund_pb2.RefundStatus.Name(status)}")
        if status not in FINAL:
            sys.exit(f"WatchRefund ended before a final status: {status}")

        # WatchRefunds resumed from a saved sequence: the stored events after it, then live
        # with no gap or duplicate. A feed consumer saves the sequence of the last event it
        # handled; here the one just before the first event watched above stands in for it.
        saved_sequence = first_sequence - 1
        feed = client.WatchRefunds(
            api.WatchRefundsRequest(after_sequence=saved_sequence),
            metadata=METADATA,
            timeout=30,
        )
        for message in feed:
            saved_sequence = message.event.sequence
            if message.event.refund.id == refund.id and message.event.refund.status in FINAL:
                print(f"  feed: #{saved_sequence} {refund.id} is final")
                feed.cancel()
                break

        # An error, decoded into ErrorInfo and BadRequest.
        try:
            client.CreateRefund(
                api.CreateRefundRequest(request_id="", provider="paymongo"),
                metadata=METADATA,
                timeout=DEADLINE_S,
            )
            sys.exit("an empty request_id must be refused")
        except grpc.RpcError as error:
            info, bad = decode_error(error)
            print(f"error {error.code().name}: reason={info.reason} domain={info.domain}")
            for violation in bad.field_violations:
                print(f"  field {violation.field}: {violation.description}")
            if error.code() != grpc.StatusCode.INVALID_ARGUMENT or not bad.field_violations:
                sys.exit("expected INVALID_ARGUMENT with field violations")
    print("ok")


def decode_error(error: grpc.RpcError):
    """ErrorInfo and BadRequest from the google.rpc.Status in the error's trailers."""
    info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    status = rpc_status.from_call(error)
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            detail.Unpack(bad)
    return info, bad


if __name__ == "__main__":
    main()
