package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Interrupted is the cause (context.Cause) of a context cancelled by a
// signal: the command lines read it to tell an interrupted run from a failed
// one.
type Interrupted struct {
	Signal os.Signal
}

func (i Interrupted) Error() string { return fmt.Sprintf("interrupted by %s", SignalName(i.Signal)) }

// ExitCode is the shell's convention for a process ended by a signal,
// 128 plus the signal number: 130 for SIGINT, 143 for SIGTERM.
func (i Interrupted) ExitCode() int {
	if s, ok := i.Signal.(syscall.Signal); ok && s > 0 {
		return 128 + int(s)
	}
	return 1
}

// SignalName names a signal as the shell does (SIGTERM).
func SignalName(s os.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case nil:
		return "a signal"
	}
	return s.String()
}

// SignalContext returns a context cancelled with the cause Interrupted when
// the process receives one of sigs, and a stop function that releases the
// signals. Like signal.NotifyContext, later signals are ignored until stop,
// so that a second SIGTERM does not cut the saving of the outputs short.
func SignalContext(parent context.Context, sigs ...os.Signal) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	go func() {
		select {
		case s := <-ch:
			cancel(Interrupted{Signal: s})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel(context.Canceled)
	}
}
