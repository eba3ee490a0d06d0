package jetstream

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

func TestRetryStoreCreate(t *testing.T) {
	storeErr := &jetstream.APIError{Code: 500, ErrorCode: storeCreateErrCode, Description: "error creating store for stream"}
	calls := 0
	err := retryStoreCreate(context.Background(), func(context.Context) error {
		calls++
		if calls < 3 {
			return storeErr
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("transient store error: err %v after %d calls, want success on the third", err, calls)
	}

	calls = 0
	err = retryStoreCreate(context.Background(), func(context.Context) error { calls++; return storeErr })
	if !errors.Is(err, storeErr) || calls != 3 {
		t.Fatalf("lasting store error: err %v after %d calls, want the error after 3", err, calls)
	}

	other := errors.New("bad config")
	calls = 0
	if err := retryStoreCreate(context.Background(), func(context.Context) error { calls++; return other }); err != other || calls != 1 {
		t.Fatalf("other errors must not be retried: err %v after %d calls", err, calls)
	}

	// An attempt left unanswered is tried again on a fresh clock.
	calls = 0
	err = retryStoreCreate(context.Background(), func(ctx context.Context) error {
		calls++
		if calls == 1 {
			return context.DeadlineExceeded
		}
		if _, ok := ctx.Deadline(); !ok {
			t.Error("an attempt without its own deadline")
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("unanswered attempt: err %v after %d calls", err, calls)
	}
}
