package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/vllm-proxy/vllm-proxy/logging"
)

// reloadDebounce collapses the burst of events an editor's save produces into one reload.
const reloadDebounce = 200 * time.Millisecond

// reloader re-reads the config file when it changes on disk or on SIGHUP and hands the
// new configuration to apply. An invalid file is rejected with one logged error and the
// running configuration stays. Start/Stop own its goroutine.
type reloader struct {
	path  string
	load  func() (*fileConfig, error)
	apply func(*fileConfig) error
	log   *slog.Logger

	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan struct{}
}

// newReloader returns a reloader for the config file at path.
func newReloader(path string, load func() (*fileConfig, error), apply func(*fileConfig) error, log *slog.Logger) *reloader {
	return &reloader{path: path, load: load, apply: apply, log: log, done: make(chan struct{})}
}

// Start begins watching. The file's directory is watched, not the file, so that editors
// and Kubernetes ConfigMaps that replace the file by rename are seen too.
func (r *reloader) Start(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	if err := w.Add(filepath.Dir(r.path)); err != nil {
		_ = w.Close()
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, r.cancel = context.WithCancel(ctx)
	go func() {
		defer close(r.done)
		defer signal.Stop(hup)
		defer w.Close()
		r.loop(ctx, w, hup)
	}()
	return nil
}

func (r *reloader) loop(ctx context.Context, w *fsnotify.Watcher, hup <-chan os.Signal) {
	target := filepath.Clean(r.path)
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if filepath.Clean(ev.Name) == target || ev.Op&(fsnotify.Create|fsnotify.Rename) != 0 {
				debounce = time.After(reloadDebounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			r.log.Warn("watching the config file", slog.String("path", r.path), logging.Err(err))
		case <-hup:
			r.reload("SIGHUP")
		case <-debounce:
			debounce = nil
			r.reload("file changed")
		}
	}
}

// reload loads and applies the file once.
func (r *reloader) reload(why string) {
	cfg, err := r.load()
	if err != nil {
		r.log.Error("config reload rejected; the running configuration stays",
			slog.String("path", r.path), slog.String("trigger", why), logging.Err(err))
		return
	}
	if err := r.apply(cfg); err != nil {
		r.log.Error("config reload failed; the running configuration stays",
			slog.String("path", r.path), slog.String("trigger", why), logging.Err(err))
		return
	}
	r.log.Info("config reloaded", slog.String("path", r.path), slog.String("trigger", why),
		slog.Int("backends", len(cfg.Backends)))
}

// Stop stops watching and waits for the goroutine. It is idempotent.
func (r *reloader) Stop() {
	r.stopOnce.Do(func() {
		if r.cancel != nil {
			r.cancel()
			<-r.done
		}
	})
}
