package metrics_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringtrain/ringtrain/pkg/metrics"
)

// A coordinator with two in-process workers shares one registry: each worker
// registers under its own worker label.
func Example() {
	reg := metrics.NewRegistry()
	coord := metrics.NewCoordinator(reg)
	w0 := metrics.NewWorker(prometheus.WrapRegistererWith(prometheus.Labels{"worker": "w0"}, reg))
	srv, addr, err := metrics.Serve("127.0.0.1:0", reg, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Shutdown(context.Background())
	_ = addr // scrape http://<addr>/metrics

	// One line per event:
	w0.Step(40*time.Millisecond, 20*time.Millisecond, 5*time.Millisecond, 3_550_000, 3_550_000)
	coord.WorkerCompute("w0", 40*time.Millisecond)
	coord.Allreduce(3_550_000, 20*time.Millisecond)
	coord.StepDone(65*time.Millisecond, 64, 0.42)
	coord.Abort(metrics.ReasonDeadline)

	// With metrics off, nil pointers take the same calls.
	var off *metrics.Coordinator
	off.StepDone(time.Second, 64, 0.42)
	fmt.Println("ok")
	// Output: ok
}
