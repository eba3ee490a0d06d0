package jetstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aegis-platform/aegis"
)

// API error codes that mean "the expected revision did not match": 10071 on
// single-replica streams, 10164 on replicated ones.
const (
	codeWrongLastSeq      jetstream.ErrorCode = 10071
	codeWrongLastSeqConst jetstream.ErrorCode = 10164
	// codeSequenceNotFound answers a delete of a sequence the stream lacks.
	codeSequenceNotFound jetstream.ErrorCode = 10043
)

// wrap prefixes err with op and, when the NATS error has a platform meaning,
// with the matching aegis sentinel. Both stay in the chain so callers can
// test errors.Is(err, aegis.ErrNotFound) and still see what NATS said.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if s := sentinel(err); s != nil && !errors.Is(err, s) {
		return fmt.Errorf("%s: %w: %w", op, s, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// sentinel classifies a NATS error; nil means it has no platform meaning.
func sentinel(err error) error {
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound),
		errors.Is(err, jetstream.ErrKeyDeleted),
		errors.Is(err, jetstream.ErrObjectNotFound),
		errors.Is(err, jetstream.ErrMsgNotFound),
		errors.Is(err, jetstream.ErrBucketNotFound),
		errors.Is(err, jetstream.ErrStreamNotFound),
		errors.Is(err, jetstream.ErrConsumerNotFound),
		errors.Is(err, jetstream.ErrConsumerDoesNotExist),
		errors.Is(err, nats.ErrKeyNotFound),
		errors.Is(err, nats.ErrObjectNotFound),
		errors.Is(err, nats.ErrMsgNotFound):
		return aegis.ErrNotFound

	case errors.Is(err, jetstream.ErrKeyExists),
		errors.Is(err, jetstream.ErrKeyRevisionMismatch),
		errors.Is(err, jetstream.ErrStreamNameAlreadyInUse),
		errors.Is(err, jetstream.ErrConsumerExists),
		errors.Is(err, jetstream.ErrBucketExists):
		return aegis.ErrConflict

	case errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum),
		errors.Is(err, jetstream.ErrMaxBytesExceeded),
		errors.Is(err, nats.ErrMaxPayload):
		return aegis.ErrLimitExceeded

	case errors.Is(err, jetstream.ErrInvalidKey),
		errors.Is(err, jetstream.ErrInvalidBucketName),
		errors.Is(err, jetstream.ErrInvalidStreamName),
		errors.Is(err, jetstream.ErrInvalidSubject),
		errors.Is(err, jetstream.ErrInvalidConsumerName),
		errors.Is(err, jetstream.ErrStreamNameRequired),
		errors.Is(err, jetstream.ErrNameRequired),
		errors.Is(err, nats.ErrBadSubject):
		return aegis.ErrInvalidArgument

	case errors.Is(err, nats.ErrAuthorization),
		errors.Is(err, nats.ErrAuthExpired),
		errors.Is(err, nats.ErrAuthRevoked),
		errors.Is(err, nats.ErrPermissionViolation):
		return aegis.ErrPermissionDenied

	case errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrTimeout),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrConnectionDraining),
		errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrNoServers),
		errors.Is(err, jetstream.ErrJetStreamNotEnabled),
		errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount),
		errors.Is(err, jetstream.ErrNoHeartbeat):
		return aegis.ErrUnavailable
	}

	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch {
		case apiErr.ErrorCode == codeWrongLastSeq, apiErr.ErrorCode == codeWrongLastSeqConst:
			return aegis.ErrConflict
		case apiErr.ErrorCode == codeSequenceNotFound, apiErr.Code == 404:
			return aegis.ErrNotFound
		case apiErr.Code == 503:
			return aegis.ErrUnavailable
		}
	}
	return nil
}

// storeCreateErrCode is JetStream's "error creating store for stream". The
// embedded server has been seen to return it now and then, under load, for
// a stream it then creates fine a moment later; it is not a configuration
// error, so creation retries it a few times before giving up.
const storeCreateErrCode = 10049

// retryStoreCreate runs create, retrying while it fails with
// storeCreateErrCode (three attempts), or goes unanswered: in a cluster,
// servers starting at once create the same streams at once, and a create
// racing another has been seen never to be answered. Each attempt gets
// its own clock (createAttempt) within ctx's; a retry finds the stream
// the other created.
func retryStoreCreate(ctx context.Context, create func(ctx context.Context) error) error {
	var err error
	storeErrs := 0
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, createAttempt)
		err = create(actx)
		cancel()
		if err == nil {
			return nil
		}
		var apiErr *jetstream.APIError
		switch {
		case errors.As(err, &apiErr) && apiErr.ErrorCode == storeCreateErrCode:
			if storeErrs++; storeErrs >= 3 {
				return err
			}
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil && attempt < 10:
		default:
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(min(attempt+1, 5)) * 100 * time.Millisecond):
		}
	}
}

// createAttempt bounds one attempt of retryStoreCreate.
const createAttempt = 2 * time.Second
