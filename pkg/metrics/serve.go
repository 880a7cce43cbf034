package metrics

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Timeouts of the metrics HTTP server: scrapes are small and local, so
// anything slower is a stuck or hostile client.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
)

// Handler returns the HTTP handler of the metrics server: /metrics serves
// reg in the Prometheus exposition formats, /healthz answers "ok", every
// other path goes to the pages handlers in turn (the coordinator's
// dashboard; a nil one is skipped), and with none it is 404.
func Handler(reg *prometheus.Registry, log *slog.Logger, pages ...http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slogPrintln{log},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	for _, p := range pages {
		if p != nil {
			mux.Handle("/", p)
			break
		}
	}
	return mux
}

// Serve listens on addr (host:port; port 0 picks a free port) and serves
// Handler(reg, log, pages...) in the background. It returns the server, to
// stop with Shutdown or Close, and the address it is bound to. log may be
// nil.
func Serve(addr string, reg *prometheus.Registry, log *slog.Logger, pages ...http.Handler) (*http.Server, net.Addr, error) {
	if reg == nil {
		return nil, nil, errors.New("metrics server: no registry")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics server: listen on %q: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           Handler(reg, log, pages...),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	log.Info("serving metrics", "addr", ln.Addr().String(), "path", "/metrics")
	return srv, ln.Addr(), nil
}

// slogPrintln adapts a slog.Logger to promhttp.Logger.
type slogPrintln struct{ log *slog.Logger }

// Println logs the handler's error at level Error.
func (l slogPrintln) Println(v ...any) {
	l.log.Error("serving metrics", "err", fmt.Sprint(v...))
}
