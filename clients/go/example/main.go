// Command example refunds a sandbox payment through refund-gateway, watches it, resumes the
// feed and decodes an error.
//
//	go run ./example                     # from clients/go, a gateway on 127.0.0.1:50051
//
// REFUND_GATEWAY_ADDR and REFUND_GATEWAY_API_KEY override the address and the API key (an
// open gateway, like the embedded default, accepts any key).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	refundsv1 "github.com/refund-gateway/refund-gateway/clients/go/refundsv1"
)

var final = map[refundsv1.RefundStatus]bool{
	refundsv1.RefundStatus_REFUND_STATUS_SUCCEEDED: true,
	refundsv1.RefundStatus_REFUND_STATUS_FAILED:    true,
	refundsv1.RefundStatus_REFUND_STATUS_CANCELED:  true,
}

func main() {
	addr := envOr("REFUND_GATEWAY_ADDR", "127.0.0.1:50051")
	apiKey := envOr("REFUND_GATEWAY_API_KEY", "example-key")

	conn, err := grpc.Dial(addr, grpc.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := refundsv1.NewRefundServiceClient(conn)

	// The API key goes in the metadata of every call, and every call gets a deadline.
	call := func(seconds time.Duration) (context.Context, context.CancelFunc) {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+apiKey)
		return context.WithTimeout(ctx, seconds*time.Second)
	}

	// CreateRefund in the sandbox: 1.00 of a 1234.56 PHP PayMongo payment. RequestId is the
	// idempotency key: a retry with the same one returns the same refund.
	ctx, cancel := call(10)
	created, err := client.CreateRefund(ctx, &refundsv1.CreateRefundRequest{
		RequestId:   "example-go-" + newID(),
		Provider:    "paymongo",
		Payment:     &refundsv1.PaymentReference{PaymentId: "pay_SandboxPaid123456"},
		Amount:      &refundsv1.Money{CurrencyCode: "PHP", MinorUnits: 100},
		Reason:      refundsv1.RefundReason_REFUND_REASON_REQUESTED_BY_CUSTOMER,
		Description: "order A-1001 returned",
	})
	cancel()
	if err != nil {
		log.Fatalf("CreateRefund: %v", err)
	}
	refund := created.GetRefund()
	fmt.Printf("created %s: %s\n", refund.GetId(), refund.GetStatus())

	// WatchRefund: the current state first, then each change; it ends after a final one.
	ctx, cancel = call(30)
	watch, err := client.WatchRefund(ctx, &refundsv1.WatchRefundRequest{Id: refund.GetId()})
	if err != nil {
		log.Fatalf("WatchRefund: %v", err)
	}
	last, firstSequence := refund.GetStatus(), uint64(0)
	for {
		message, err := watch.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatalf("WatchRefund: %v", err)
		}
		last = message.GetEvent().GetRefund().GetStatus()
		if firstSequence == 0 {
			firstSequence = message.GetEvent().GetSequence()
		}
		fmt.Printf("  watch: %s\n", last)
	}
	cancel()
	if !final[last] {
		log.Fatalf("WatchRefund ended before a final status: %s", last)
	}

	// WatchRefunds resumed from a saved sequence: the stored events after it, then live with
	// no gap or duplicate. A feed consumer saves the sequence of the last event it handled;
	// here the one just before the first event watched above stands in for it.
	ctx, cancel = call(30)
	feed, err := client.WatchRefunds(ctx, &refundsv1.WatchRefundsRequest{AfterSequence: proto.Uint64(firstSequence - 1)})
	if err != nil {
		log.Fatalf("WatchRefunds: %v", err)
	}
	for {
		message, err := feed.Recv()
		if err != nil {
			log.Fatalf("WatchRefunds: %v", err)
		}
		event := message.GetEvent()
		if event.GetRefund().GetId() == refund.GetId() && final[event.GetRefund().GetStatus()] {
			fmt.Printf("  feed: #%d %s is final\n", event.GetSequence(), refund.GetId())
			break
		}
	}
	cancel() // ends the stream

	// An error, decoded into ErrorInfo and BadRequest.
	ctx, cancel = call(10)
	_, err = client.CreateRefund(ctx, &refundsv1.CreateRefundRequest{Provider: "paymongo"})
	cancel()
	st := status.Convert(err)
	var info *errdetails.ErrorInfo
	var bad *errdetails.BadRequest
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			info = d
		case *errdetails.BadRequest:
			bad = d
		}
	}
	fmt.Printf("error %s: reason=%s domain=%s\n", st.Code(), info.GetReason(), info.GetDomain())
	for _, violation := range bad.GetFieldViolations() {
		fmt.Printf("  field %s: %s\n", violation.GetField(), violation.GetDescription())
	}
	if st.Code() != codes.InvalidArgument || len(bad.GetFieldViolations()) == 0 {
		log.Fatal("expected INVALID_ARGUMENT with field violations")
	}
	fmt.Println("ok")
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

// newID is a random request id suffix.
func newID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		log.Fatal(err)
	}
	return hex.EncodeToString(b)
}
