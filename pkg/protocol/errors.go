package protocol

import (
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorDomain names ringtrain in the ErrorInfo detail of its gRPC errors.
const ErrorDomain = "ringtrain"

// Reason classifies a worker's or coordinator's error across the wire. It
// travels as the Reason of a google.rpc.ErrorInfo detail, so the receiver
// decides with ReasonOf, never by matching message text.
type Reason string

// The reasons a worker or the coordinator fails an RPC with.
const (
	// ReasonNonFinite: the step's all-reduced loss or gradient is NaN or
	// infinite (codes.OutOfRange). Every worker of the ring sees the same.
	ReasonNonFinite Reason = "NON_FINITE"
	// ReasonBadChecksum: a transferred state does not match its checksum
	// (codes.DataLoss).
	ReasonBadChecksum Reason = "BAD_CHECKSUM"
	// ReasonStaleGeneration: a request of an older ring generation.
	ReasonStaleGeneration Reason = "STALE_GENERATION"
	// ReasonNoState: the worker holds no state yet, or not the held step.
	ReasonNoState Reason = "NO_STATE"
	// ReasonWrongRun: a request for another run, or before the worker joined.
	ReasonWrongRun Reason = "WRONG_RUN"
	// ReasonBadRequest: a malformed request (shard, ring, state chunk).
	ReasonBadRequest Reason = "BAD_REQUEST"
	// ReasonRing: the all-reduce with the ring neighbours failed.
	ReasonRing Reason = "RING"
	// ReasonMismatch: a joining worker's protocol version or model differs
	// from the run's (codes.FailedPrecondition).
	ReasonMismatch Reason = "MISMATCH"
)

// Errorf returns a gRPC status error with code, message and an ErrorInfo
// detail carrying reason.
func Errorf(code codes.Code, reason Reason, format string, args ...any) error {
	st := status.New(code, fmt.Sprintf(format, args...))
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: string(reason), Domain: ErrorDomain}); err == nil {
		st = d
	}
	return st.Err()
}

// ReasonOf returns the Reason carried by err (a gRPC status error, possibly
// wrapped), or "" if it carries none.
func ReasonOf(err error) Reason {
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		return ""
	}
	for _, d := range se.GRPCStatus().Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Domain == ErrorDomain {
			return Reason(info.Reason)
		}
	}
	return ""
}

// CheckVersion is the one protocol version check, used at gossip admission,
// at Join and by tests: an error names both versions.
func CheckVersion(who string, got uint32) error {
	if got != Version {
		return fmt.Errorf("%s speaks protocol version %d, this side speaks %d", who, got, Version)
	}
	return nil
}
