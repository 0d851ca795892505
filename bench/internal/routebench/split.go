package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// splitter is a round-robin reverse proxy over upstreams. Safe for concurrent use.
type splitter struct {
	ups  []*url.URL
	next atomic.Uint64
	rp   *httputil.ReverseProxy
}

// newSplitter returns a splitter over upstream base URLs (scheme://host[:port]); proxy
// errors (an upstream down: 502) are logged to log at Warn.
func newSplitter(upstreams []string, log *slog.Logger) (*splitter, error) {
	s := &splitter{}
	for _, u := range upstreams {
		p, err := url.Parse(strings.TrimSpace(u))
		if err != nil || p.Host == "" {
			return nil, fmt.Errorf("upstream %q is not an absolute url", u)
		}
		s.ups = append(s.ups, p)
	}
	if len(s.ups) == 0 {
		return nil, errors.New("no upstreams")
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
	}
	s.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			up := s.ups[(s.next.Add(1)-1)%uint64(len(s.ups))]
			pr.SetURL(up)
			pr.Out.Host = up.Host
		},
		Transport:     tr,
		FlushInterval: -1, // SSE: flush every write
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// ServeHTTP forwards r to the next upstream. The request body is read into memory first,
// so that the upstream transport never reads from (or closes) the inbound connection's
// body while the response streams back.
func (s *splitter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		http.Error(w, "bad request body", http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	s.rp.ServeHTTP(w, r)
}

// maxBody bounds a request body the splitter buffers.
const maxBody = 64 << 20

func runSplit(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("split", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:19590", "address to listen on")
	ups := fs.String("upstreams", "", "comma-separated upstream base URLs, used round-robin per request")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("parsing split flags: %w", err)
	}
	s, err := newSplitter(strings.Split(*ups, ","), log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Info("splitter listening", "addr", ln.Addr().String(), "upstreams", len(s.ups))
	err = srv.Serve(ln)
	cancel()
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("serving: %w", err)
}
