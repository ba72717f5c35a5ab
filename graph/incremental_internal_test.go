package graph

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"
)

// TestRequestScoped: a detached operation's resolvers get the request's
// deadline and cancellation (and its cause) back; others keep their context.
func TestRequestScoped(t *testing.T) {
	cause := errors.New("client left")
	req, cancel := context.WithCancelCause(context.Background())
	req, stop := context.WithTimeout(req, time.Hour)
	defer stop()
	op, cancelOp := detach(req)
	defer cancelOp()
	if _, ok := op.Deadline(); ok || op.Done() == nil {
		t.Fatalf("detached context has a deadline or cannot be cancelled")
	}
	ctx, done := requestScoped(op)
	defer done()
	if d, ok := ctx.Deadline(); !ok || time.Until(d) < 59*time.Minute {
		t.Errorf("resolver context deadline %v %v, want the request's", d, ok)
	}
	cancel(cause)
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
		t.Fatal("resolver context not cancelled with the request")
	}
	if !errors.Is(context.Cause(ctx), cause) {
		t.Errorf("cause %v, want %v", context.Cause(ctx), cause)
	}
	if op.Err() != nil {
		t.Errorf("the detached operation ended with the request: %v", op.Err())
	}

	plain := context.Background()
	if got, _ := requestScoped(plain); got != plain {
		t.Errorf("requestScoped changed a context that is not detached")
	}
}

func TestDeliveryFor(t *testing.T) {
	tests := []struct {
		accept string
		want   delivery
	}{
		{"", deliverJSON},
		{"application/json", deliverJSON},
		{"multipart/mixed;deferSpec=20220824,application/graphql-response+json,application/json;q=0.9", deliverMultipart},
		{"multipart/mixed, application/graphql-response+json, application/json", deliverMultipart}, // urql
		{"application/json, multipart/mixed;deferSpec=20220824", deliverJSON},
		{"application/json;q=0.5, multipart/mixed", deliverMultipart},
		{"multipart/mixed;deferSpec=20230621, application/json", deliverJSON},
		{"multipart/mixed;q=0, application/json", deliverJSON},
		{"text/event-stream", deliverSSE},
		{"text/event-stream, application/json;q=0.1", deliverSSE},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("POST", "/graphql", nil)
		r.Header.Set("Accept", tt.accept)
		if got := deliveryFor(r); got != tt.want {
			t.Errorf("Accept %q: %d, want %d", tt.accept, got, tt.want)
		}
	}
}
