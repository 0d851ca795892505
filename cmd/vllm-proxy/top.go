package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/vllm-proxy/vllm-proxy/client"
	"github.com/vllm-proxy/vllm-proxy/logging"
)

// TopCmd is a full-screen, refreshing view of a running proxy's GET /load-stats: every
// backend's health, load, running and waiting requests, in-flight requests by class, KV
// cache usage, engine and predicted prefix-cache hit rates, and whether its metrics are
// stale. q or Ctrl-C quits.
type TopCmd struct {
	remoteFlags `embed:""`
	Interval    time.Duration `name:"interval" short:"i" default:"1s" placeholder:"DURATION" help:"Refresh interval. Default: ${default}."`
	Once        bool          `name:"once" help:"Print one frame as plain text and exit (also the mode when stdout or stdin is not a terminal: a frame per interval)."`
}

// Terminal escapes of the full-screen view.
const (
	escEnter = "\x1b[?1049h\x1b[?25l" // alternate screen, cursor hidden
	escLeave = "\x1b[?25h\x1b[?1049l" // cursor shown, main screen back
	escHome  = "\x1b[H"
	escEOL   = "\x1b[K"
	escEOS   = "\x1b[J"
)

// prepare checks the flags before anything starts; a problem exits 2.
func (t *TopCmd) prepare(*App, func(string) source) error {
	var err error
	if t.Interval <= 0 {
		err = fmt.Errorf("--interval %s: must be positive", t.Interval)
	}
	return errors.Join(t.check(), err)
}

// Run shows the view until q, Ctrl-C, SIGINT or SIGTERM.
func (t *TopCmd) Run(app *App) error {
	c, err := t.client()
	if err != nil {
		return err
	}
	out, ok := app.Stdout.(*os.File)
	if t.Once || !ok || !logging.IsTerminal(out) || !term.IsTerminal(int(os.Stdin.Fd())) {
		return t.plain(app, c)
	}
	return t.screen(app, c, out)
}

// frame fetches /load-stats within the call timeout.
func (t *TopCmd) fetch(ctx context.Context, c *client.Client) (client.LoadStats, error) {
	ctx, cancel := context.WithTimeout(ctx, min(t.Timeout, max(t.Interval*3, time.Second)))
	defer cancel()
	return c.LoadStats(ctx)
}

// plain prints frames as plain text: one with --once (an unreachable proxy is then an
// error), else one per interval, separated by a blank line, until app.Ctx ends.
func (t *TopCmd) plain(app *App, c *client.Client) error {
	tick := time.NewTicker(t.Interval)
	defer tick.Stop()
	for {
		s, err := t.fetch(app.Ctx, c)
		if t.Once && err != nil {
			return err
		}
		v := client.TopView{URL: c.URL(), At: time.Now(), Stats: s, Err: err}
		fmt.Fprintln(app.Stdout, strings.Join(v.Render(0), "\n"))
		if t.Once {
			return nil
		}
		select {
		case <-app.Ctx.Done():
			return nil
		case <-tick.C:
		}
		fmt.Fprintln(app.Stdout)
	}
}

// screen draws the view on the alternate screen, with the terminal in raw mode so that
// single keys arrive at once; both are undone on return, whatever the path.
func (t *TopCmd) screen(app *App, c *client.Client, out *os.File) (err error) {
	inFd := int(os.Stdin.Fd())
	old, err := term.MakeRaw(inFd)
	if err != nil {
		return fmt.Errorf("putting the terminal in raw mode: %w", err)
	}
	defer func() { _ = term.Restore(inFd, old) }()
	keys, stopKeys, err := readKeys(inFd)
	if err != nil {
		return err
	}
	defer stopKeys()
	fmt.Fprint(out, escEnter)
	defer fmt.Fprint(out, escLeave)

	ctx, cancel := context.WithCancel(app.Ctx)
	defer cancel()
	views := make(chan client.TopView, 1)
	var wg sync.WaitGroup
	wg.Go(func() { t.poll(ctx, c, views) })
	defer wg.Wait()
	defer cancel() // runs before wg.Wait

	view := client.TopView{URL: c.URL(), At: time.Now(), Color: true}
	draw := func() {
		w, h, err := term.GetSize(int(out.Fd()))
		if err != nil {
			w, h = 100, 40
		}
		lines := view.Render(w - 1)
		if len(view.Stats.Backends) == 0 && view.Err == nil {
			lines = append(lines, "", "waiting for "+c.URL()+"/load-stats ...")
		}
		if len(lines) > h {
			lines = lines[:h]
		}
		var b strings.Builder
		b.WriteString(escHome)
		for _, l := range lines {
			b.WriteString(l + escEOL + "\r\n")
		}
		b.WriteString(escEOS)
		_, _ = io.WriteString(out, b.String())
	}
	draw()
	for {
		select {
		case <-app.Ctx.Done():
			return nil
		case k, ok := <-keys:
			if !ok || k == 'q' || k == 'Q' || k == 3 { // 3: Ctrl-C in raw mode
				return nil
			}
			draw() // any other key redraws (after a resize, say)
		case v := <-views:
			if v.Err != nil {
				v.Stats = view.Stats // keep the last answer on screen, marked with the error
			}
			view = v
			draw()
		}
	}
}

// poll fetches /load-stats every interval and sends a view of each answer, keeping only
// the newest if the drawer is behind, until ctx ends.
func (t *TopCmd) poll(ctx context.Context, c *client.Client, views chan client.TopView) {
	tick := time.NewTicker(t.Interval)
	defer tick.Stop()
	for {
		s, err := t.fetch(ctx, c)
		if ctx.Err() != nil {
			return
		}
		v := client.TopView{URL: c.URL(), At: time.Now(), Stats: s, Err: err, Color: true}
		select {
		case <-views: // drop the unread older view
		default:
		}
		views <- v
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// readKeys reads single bytes from the terminal fd until stop is called. It reads a
// non-blocking duplicate of fd through the runtime poller, so that stop can interrupt a
// pending read and wait for the reader to end; stop puts fd back in blocking mode, since
// the duplicate shares that flag with it.
func readKeys(fd int) (keys <-chan byte, stop func(), err error) {
	dup, err := syscall.Dup(fd)
	if err != nil {
		return nil, nil, fmt.Errorf("reading keys: %w", err)
	}
	if err := syscall.SetNonblock(dup, true); err != nil {
		_ = syscall.Close(dup)
		return nil, nil, fmt.Errorf("reading keys: %w", err)
	}
	in := os.NewFile(uintptr(dup), "stdin")
	ch := make(chan byte, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		buf := make([]byte, 64)
		for {
			n, err := in.Read(buf)
			for _, b := range buf[:n] {
				select {
				case ch <- b:
				default: // nobody is reading that fast; drop
				}
			}
			if err != nil && !errors.Is(err, syscall.EAGAIN) {
				return
			}
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = in.Close()
			<-done
			_ = syscall.SetNonblock(fd, false)
		})
	}
	return ch, stop, nil
}
