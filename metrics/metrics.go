// Package metrics exports a node's figures in the Prometheus format: the
// exchange's counters (read from Stats on each scrape, so they never drift
// from what `bsfs stat` shows), latency histograms for block fetches and
// FUSE reads, and the Go runtime's own. It also serves pprof profiles on the
// same loopback listener.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bsfs/bsfs/exchange"
)

// DefaultAddress is where the daemon serves metrics unless told otherwise.
const DefaultAddress = "127.0.0.1:5099"

// ErrNotLoopback is returned by Serve for an address off the loopback
// interface when public serving was not asked for.
var ErrNotLoopback = errors.New("not a loopback address")

// Source is what the exchange counters are read from.
type Source interface {
	Stats() exchange.Stats
}

// Metrics is one node's registry.
type Metrics struct {
	Registry *prometheus.Registry
	// BlockLatency is the time from a GetBlock(s) call to each block's
	// delivery, local hits included.
	BlockLatency prometheus.Histogram
	// ReadLatency is the time a FUSE read takes.
	ReadLatency prometheus.Histogram
}

// New returns a registry with the Go runtime and process collectors and the
// two latency histograms.
func New() *Metrics {
	// From a page-cache hit to a slow fetch: 50 µs to about 50 s.
	latencyBuckets := prometheus.ExponentialBuckets(50e-6, 4, 11)
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		BlockLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "bsfs", Name: "get_block_seconds",
			Help:    "Time from a block request to the block's delivery.",
			Buckets: latencyBuckets,
		}),
		ReadLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "bsfs", Name: "fuse_read_seconds",
			Help:    "Time a read on the FUSE mount takes.",
			Buckets: latencyBuckets,
		}),
	}
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.BlockLatency, m.ReadLatency,
	)
	return m
}

// Watch exports src's counters.
func (m *Metrics) Watch(src Source) error {
	return m.Registry.Register(newExchangeCollector(src))
}

// Handler serves the metrics at /metrics and pprof at /debug/pprof/.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Server is a running metrics endpoint.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// Serve listens on addr and serves Handler. An address that is not a
// loopback one is refused unless public is set: metrics and profiles say
// much about a node.
func (m *Metrics) Serve(addr string, public bool) (*Server, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("metrics address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); !public && (ip == nil || !ip.IsLoopback()) && host != "localhost" {
		return nil, fmt.Errorf("metrics address %q: %w (set Metrics.Public in the config to serve it there)", addr, ErrNotLoopback)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	s := &Server{
		srv:  &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 10 * time.Second},
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the server and waits for it.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
