package trace_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ringtrain/ringtrain/pkg/trace"
)

// The coordinator turns the durations in the workers' step reports into
// spans on each worker's track, then writes the trace at the end of the run.
func ExampleRecorder_Step() {
	rec := trace.NewRecorder(0)
	start := time.Now() // when the coordinator sent the step
	rec.Span("coordinator", "step", trace.CatControl, start, 25*time.Millisecond, map[string]any{"step": 7, "generation": 2})
	rec.Step(7, start, "w0", 12*time.Millisecond, 8*time.Millisecond)
	rec.Step(7, start, "w1", 16*time.Millisecond, 8*time.Millisecond) // the straggler

	path := filepath.Join(os.TempDir(), "ringtrain-example-trace.json")
	defer os.Remove(path)
	if err := rec.WriteFile(path); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rec.Len(), "events,", rec.Dropped(), "dropped")
	// Output: 5 events, 0 dropped
}
