package metrics

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestServeScrape(t *testing.T) {
	reg := NewRegistry()
	c := NewCoordinator(reg)
	c.StepDone(100*time.Millisecond, 64, 0.5)
	c.WorkerCompute("w0", 40*time.Millisecond)
	srv, addr, err := Serve("127.0.0.1:0", reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	if srv.ReadHeaderTimeout <= 0 {
		t.Error("no ReadHeaderTimeout")
	}
	base := "http://" + addr.String()
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: reading the body: %v", path, err)
		}
		return resp.StatusCode, string(body)
	}

	code, body := get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: status %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	for _, tt := range []struct {
		family string
		want   float64
	}{
		{"ringtrain_steps_total", 1},
		{"ringtrain_samples_total", 64},
		{"ringtrain_step_loss", 0.5},
		{"ringtrain_build_info", 1},
	} {
		mf, ok := families[tt.family]
		if !ok || len(mf.GetMetric()) != 1 {
			t.Errorf("%s: not in the scrape as one series", tt.family)
			continue
		}
		mt := mf.GetMetric()[0]
		got := mt.GetCounter().GetValue() + mt.GetGauge().GetValue()
		if got != tt.want {
			t.Errorf("%s = %v, want %v", tt.family, got, tt.want)
		}
	}
	for _, series := range []string{
		`ringtrain_step_compute_duration_seconds_count{worker="w0"} 1`,
		`ringtrain_step_aborts_total{reason="deadline"} 0`,
		"go_goroutines ",
		"process_start_time_seconds ",
	} {
		if !strings.Contains(body, series) {
			t.Errorf("scrape lacks %q", series)
		}
	}

	for _, tt := range []struct {
		path     string
		wantCode int
		wantBody string
	}{
		{"/healthz", http.StatusOK, "ok"},
		{"/", http.StatusNotFound, ""},
		{"/debug/pprof/", http.StatusNotFound, ""},
	} {
		code, body := get(tt.path)
		if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
			t.Errorf("GET %s: status %d body %q, want %d and %q", tt.path, code, body, tt.wantCode, tt.wantBody)
		}
	}
}

func TestServeErrors(t *testing.T) {
	if _, _, err := Serve("127.0.0.1:0", nil, nil); err == nil {
		t.Error("Serve with no registry: no error")
	}
	_, _, err := Serve("127.0.0.1:-1", NewRegistry(), nil)
	if err == nil || !strings.Contains(err.Error(), `"127.0.0.1:-1"`) {
		t.Errorf("Serve on a bad address: error %v, want one naming the address", err)
	}
}
