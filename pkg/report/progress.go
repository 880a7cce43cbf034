package report

import (
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// progressInterval is the minimum time between two redraws of the bar.
const progressInterval = 100 * time.Millisecond

// progressBarWidth is the number of cells in the bar itself.
const progressBarWidth = 20

// Progress renders a one-line progress bar to a terminal:
//
//	epoch 3 [=========>          ] 120/250  5,432 samples/s  loss 0.0831  ETA 0:24
//
// The line is redrawn in place with '\r' at most every 100 ms (and always
// on an epoch's last step). When the writer is not a terminal Progress
// writes nothing at all, so logs and pipes only get the caller's per-epoch
// log lines. A Progress is safe for concurrent use.
type Progress struct {
	mu      sync.Mutex
	w       io.Writer
	now     func() time.Time
	enabled bool

	lastDraw time.Time
	drawn    bool // a line is currently shown
	lastLen  int  // length of the line shown, to blank it out

	started      bool
	startTime    time.Time // first Update: samples/s is measured from here
	startSamples int64
	epoch        int
	epochTime    time.Time // first Update of the current epoch: ETA is measured from here
	epochStep    int
}

// IsTerminal reports whether w is a terminal: an *os.File (or anything with
// an Fd method) whose descriptor is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// NewProgress returns a Progress drawing to w if w is a terminal (see
// IsTerminal); now is the clock, time.Now outside tests.
func NewProgress(w io.Writer, now func() time.Time) *Progress {
	return NewProgressTo(w, now, IsTerminal(w))
}

// NewProgressTo is NewProgress with terminal detection decided by the
// caller: when terminal is false the Progress writes nothing.
func NewProgressTo(w io.Writer, now func() time.Time, terminal bool) *Progress {
	if now == nil {
		now = time.Now
	}
	return &Progress{w: w, now: now, enabled: terminal}
}

// Update reports that step of steps (1-based) in epoch is done, samples
// trained so far in the run, and the running loss to display. The bar is
// redrawn if 100 ms have passed since the last redraw, on the epoch's last
// step, and on the first update.
func (p *Progress) Update(epoch, step, steps int, samples int64, loss float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.enabled {
		return
	}
	t := p.now()
	if !p.started {
		p.started = true
		p.startTime, p.startSamples = t, samples
	}
	if epoch != p.epoch || p.epochTime.IsZero() {
		p.epoch, p.epochTime, p.epochStep = epoch, t, step
	}
	if p.drawn && t.Sub(p.lastDraw) < progressInterval && step != steps {
		return
	}
	line := p.render(t, epoch, step, steps, samples, loss)
	pad := ""
	if n := p.lastLen - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	if _, err := io.WriteString(p.w, "\r"+line+pad); err != nil {
		p.enabled = false // a broken terminal is not worth failing a run for
		return
	}
	p.drawn, p.lastDraw, p.lastLen = true, t, len(line)
}

// render formats the progress line.
func (p *Progress) render(t time.Time, epoch, step, steps int, samples int64, loss float64) string {
	frac := 0.0
	if steps > 0 {
		frac = math.Min(math.Max(float64(step)/float64(steps), 0), 1)
	}
	filled := int(frac * progressBarWidth)
	bar := strings.Repeat("=", filled)
	if filled < progressBarWidth {
		bar += ">" + strings.Repeat(" ", progressBarWidth-filled-1)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "epoch %d [%s] %d/%d", epoch, bar, step, steps)
	if el := t.Sub(p.startTime).Seconds(); el > 0 && samples > p.startSamples {
		fmt.Fprintf(&b, "  %s samples/s", groupThousands(int64(math.Round(float64(samples-p.startSamples)/el))))
	}
	fmt.Fprintf(&b, "  loss %.4f", loss)
	if done := step - p.epochStep; done > 0 && steps > step {
		perStep := t.Sub(p.epochTime) / time.Duration(done)
		fmt.Fprintf(&b, "  ETA %s", formatETA(perStep*time.Duration(steps-step)))
	}
	return b.String()
}

// Done clears the progress line so that the caller's next log line starts
// on a clean line. Updates after Done draw a new bar.
func (p *Progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.enabled || !p.drawn {
		return
	}
	if _, err := io.WriteString(p.w, "\r"+strings.Repeat(" ", p.lastLen)+"\r"); err != nil {
		p.enabled = false
	}
	p.drawn, p.lastLen = false, 0
	p.epochTime = time.Time{}
}

// groupThousands formats n with comma thousands separators.
func groupThousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// formatETA formats d as m:ss, or h:mm:ss from an hour up.
func formatETA(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
