package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/vllm-proxy/vllm-proxy/client"
	"github.com/vllm-proxy/vllm-proxy/logging"
)

// remoteFlags are the flags of every command that talks to a running proxy.
type remoteFlags struct {
	URL     string        `name:"url" env:"VLLM_PXY_URL" default:"http://localhost:8010" placeholder:"URL" help:"The proxy's base URL. Env: ${env}. Default: ${default}."`
	APIKey  string        `name:"api-key" env:"VLLM_PXY_API_KEY,OPENAI_API_KEY" placeholder:"KEY" help:"Sent as 'Authorization: Bearer KEY' when the proxy requires API keys. Env: VLLM_PXY_API_KEY, else OPENAI_API_KEY."`
	Timeout time.Duration `name:"timeout" default:"30s" placeholder:"DURATION" help:"Limit of each API call other than file uploads and downloads. Default: ${default}."`
}

// check reports bad remote flags before anything is sent (the command exits 2).
func (f remoteFlags) check() error {
	if err := (client.Config{URL: f.URL, APIKey: f.APIKey, Timeout: f.Timeout}).Validate(); err != nil {
		return fmt.Errorf("--url/--timeout: %w", err)
	}
	return nil
}

// check reports a bad --poll-interval (the command exits 2).
func (f followFlags) check() error {
	if f.PollInterval <= 0 {
		return fmt.Errorf("--poll-interval %s: must be positive", f.PollInterval)
	}
	return nil
}

func (f remoteFlags) client() (*client.Client, error) {
	c, err := client.New(client.Config{URL: f.URL, APIKey: f.APIKey, Timeout: f.Timeout})
	if err != nil {
		return nil, fmt.Errorf("--url: %w", err)
	}
	return c, nil
}

// BatchCmd groups the batch subcommands.
type BatchCmd struct {
	Submit   BatchSubmitCmd   `cmd:"" help:"Upload a JSONL file and create a batch; with --wait, follow it with a progress bar and download its results."`
	List     BatchListCmd     `cmd:"" help:"List batches, newest first."`
	Status   BatchStatusCmd   `cmd:"" help:"Show a batch; with --wait, follow it until it ends."`
	Cancel   BatchCancelCmd   `cmd:"" help:"Cancel a batch; with --wait, follow it until it is cancelled."`
	Download BatchDownloadCmd `cmd:"" help:"Download a batch's output and error files."`
}

// followFlags are the flags of commands that can follow a batch to its end.
type followFlags struct {
	Wait         bool          `name:"wait" short:"w" help:"Follow the batch with a progress bar (done/total, rate, ETA) until it ends."`
	PollInterval time.Duration `name:"poll-interval" default:"1s" placeholder:"DURATION" help:"How often --wait reads the batch. Default: ${default}."`
}

// BatchSubmitCmd uploads a file, creates a batch and optionally follows it.
type BatchSubmitCmd struct {
	remoteFlags `embed:""`
	followFlags `embed:""`

	File             string            `arg:"" type:"existingfile" help:"JSONL file of requests in the OpenAI batch input format."`
	Endpoint         string            `name:"endpoint" short:"e" default:"/v1/chat/completions" placeholder:"PATH" help:"Endpoint every line calls: /v1/chat/completions, /v1/completions, /v1/embeddings, ... Default: ${default}."`
	CompletionWindow string            `name:"completion-window" default:"24h" placeholder:"WINDOW" help:"OpenAI completion window. Default: ${default}."`
	Metadata         map[string]string `name:"metadata" placeholder:"KEY=VALUE" help:"Batch metadata; repeatable."`
	Output           string            `name:"output" short:"o" type:"path" placeholder:"DIR" help:"Where --wait writes BATCH_output.jsonl and BATCH_errors.jsonl; giving it implies --wait. Default: the current directory."`
}

// Run uploads, creates, and with --wait (or --output) follows and downloads.
func (s *BatchSubmitCmd) Run(app *App) error {
	c, err := s.client()
	if err != nil {
		return err
	}
	f, err := os.Open(s.File)
	if err != nil {
		return fmt.Errorf("opening the batch input: %w", err)
	}
	defer f.Close()
	file, err := c.UploadFile(app.Ctx, filepath.Base(s.File), f)
	if err != nil {
		return err
	}
	fmt.Fprintf(app.Stdout, "uploaded %s as %s (%d bytes)\n", s.File, file.ID, file.Bytes)
	b, err := c.CreateBatch(app.Ctx, client.BatchRequest{InputFileID: file.ID, Endpoint: s.Endpoint,
		CompletionWindow: s.CompletionWindow, Metadata: s.Metadata})
	if err != nil {
		return fmt.Errorf("creating the batch: %w", err)
	}
	fmt.Fprintf(app.Stdout, "created %s\n", b.ID)
	if !s.Wait && s.Output == "" {
		fmt.Fprintf(app.Stdout, "follow it with: vllm-proxy batch status --wait %s\n", b.ID)
		return nil
	}
	b, err = followBatch(app, c, b.ID, s.PollInterval)
	if err != nil {
		return err
	}
	return finish(app, c, b, s.Output)
}

// finish downloads a finished batch's files into dir and reports an unsuccessful end as
// an error, so the command exits 1.
func finish(app *App, c *client.Client, b client.Batch, dir string) error {
	printBatchErrors(app.Stdout, b)
	if err := downloadResults(app, c, b, dir); err != nil {
		return err
	}
	if b.Status != "completed" {
		return fmt.Errorf("batch %s ended %s", b.ID, b.Status)
	}
	return nil
}

// followBatch polls batch id every interval, drawing its progress, until it reaches a
// terminal status or app.Ctx ends. On a terminal the line is redrawn in place; otherwise
// a line is printed per change of status or counts.
func followBatch(app *App, c *client.Client, id string, interval time.Duration) (client.Batch, error) {
	out := app.Stdout
	tty := logging.IsTerminal(out)
	width := 0
	if f, ok := out.(*os.File); ok && tty {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil {
			width = w - 1
		}
	}
	var p client.Progress
	lastKey := ""
	fails := 0
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		b, err := c.GetBatch(app.Ctx, id)
		switch {
		case err != nil && app.Ctx.Err() == nil && !errors.Is(err, client.ErrNotFound) && fails < 5:
			fails++ // a replica restarting: the batch goes on in the others
			app.Log.Warn("reading the batch failed; retrying", slog.String("batch", id), logging.Err(err))
		case err != nil:
			if tty && lastKey != "" {
				fmt.Fprintln(out)
			}
			return client.Batch{}, stopped(app.Ctx, id, err)
		default:
			fails = 0
			p.Observe(time.Now(), b)
			if tty {
				fmt.Fprint(out, "\r"+p.Line(width)+"\x1b[K")
			} else if k := p.Key(); k != lastKey {
				fmt.Fprintln(out, p.Line(0))
			}
			lastKey = p.Key()
			if b.Terminal() {
				if tty {
					fmt.Fprintln(out)
				}
				return b, nil
			}
		}
		select {
		case <-app.Ctx.Done():
			if tty {
				fmt.Fprintln(out)
			}
			return client.Batch{}, stopped(app.Ctx, id, app.Ctx.Err())
		case <-t.C:
		}
	}
}

func stopped(ctx context.Context, id string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("stopped following batch %s; it goes on (vllm-proxy batch status --wait %s): %w", id, id, err)
	}
	return fmt.Errorf("following batch %s: %w", id, err)
}

// downloadResults writes the batch's output and error files into dir (default ".") as
// BATCH_output.jsonl and BATCH_errors.jsonl, each through a temporary file renamed into
// place, and prints each path.
func downloadResults(app *App, c *client.Client, b client.Batch, dir string) error {
	if dir == "" {
		dir = "."
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("creating the output directory: %w", err)
	}
	got := 0
	for _, f := range []struct {
		id   *string
		name string
	}{{b.OutputFileID, b.ID + "_output.jsonl"}, {b.ErrorFileID, b.ID + "_errors.jsonl"}} {
		if f.id == nil || *f.id == "" {
			continue
		}
		path := filepath.Join(dir, f.name)
		n, lines, err := downloadTo(app.Ctx, c, *f.id, path)
		if err != nil {
			return err
		}
		got++
		fmt.Fprintf(app.Stdout, "wrote %s (%d lines, %d bytes)\n", path, lines, n)
	}
	if got == 0 {
		fmt.Fprintf(app.Stdout, "batch %s has no output or error file\n", b.ID)
	}
	return nil
}

// downloadTo copies file id to path atomically and counts its lines.
func downloadTo(ctx context.Context, c *client.Client, id, path string) (n, lines int64, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return 0, 0, fmt.Errorf("downloading %s: %w", id, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o644); err != nil { // CreateTemp makes it private; results are ordinary files
		return 0, 0, fmt.Errorf("writing %s: %w", path, err)
	}
	lc := &lineCounter{w: tmp}
	if n, err = c.DownloadFile(ctx, id, lc); err != nil {
		return n, 0, err
	}
	if err = tmp.Close(); err != nil {
		return n, 0, fmt.Errorf("writing %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return n, 0, fmt.Errorf("writing %s: %w", path, err)
	}
	return n, lc.lines, nil
}

type lineCounter struct {
	w     io.Writer
	lines int64
}

func (l *lineCounter) Write(p []byte) (int, error) {
	l.lines += int64(strings.Count(string(p), "\n"))
	return l.w.Write(p)
}

// printBatchErrors prints a batch's errors (validation failures with their line).
func printBatchErrors(w io.Writer, b client.Batch) {
	if b.Errors == nil {
		return
	}
	for _, e := range b.Errors.Data {
		where := ""
		if e.Line != nil {
			where = fmt.Sprintf("line %d: ", *e.Line)
		}
		fmt.Fprintf(w, "error: %s%s (%s)\n", where, e.Message, e.Code)
	}
}

// BatchListCmd lists batches.
type BatchListCmd struct {
	remoteFlags `embed:""`
	Limit       int `name:"limit" default:"20" placeholder:"N" help:"How many batches at most. Default: ${default}."`
}

// Run prints one row per batch.
func (l *BatchListCmd) Run(app *App) error {
	c, err := l.client()
	if err != nil {
		return err
	}
	bs, err := c.ListBatches(app.Ctx, l.Limit)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(app.Stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tENDPOINT\tDONE/TOTAL\tFAILED\tCREATED")
	for _, b := range bs {
		rc := b.RequestCounts
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d\t%s\n", b.ID, b.Status, b.Endpoint, rc.Done(), rc.Total, rc.Failed, unixTime(b.CreatedAt))
	}
	return tw.Flush()
}

// BatchStatusCmd shows one batch.
type BatchStatusCmd struct {
	remoteFlags `embed:""`
	followFlags `embed:""`
	ID          string `arg:"" placeholder:"BATCH_ID" help:"The batch."`
}

// Run prints the batch, or follows it with --wait.
func (s *BatchStatusCmd) Run(app *App) error {
	c, err := s.client()
	if err != nil {
		return err
	}
	if s.Wait {
		b, err := followBatch(app, c, s.ID, s.PollInterval)
		if err != nil {
			return err
		}
		printBatch(app.Stdout, b)
		return nil
	}
	b, err := c.GetBatch(app.Ctx, s.ID)
	if err != nil {
		return err
	}
	printBatch(app.Stdout, b)
	return nil
}

// printBatch prints a batch as "key: value" lines.
func printBatch(w io.Writer, b client.Batch) {
	tw := tabwriter.NewWriter(w, 2, 8, 1, ' ', 0)
	rc := b.RequestCounts
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("id", b.ID)
	row("status", b.Status)
	row("endpoint", b.Endpoint)
	row("input_file_id", b.InputFileID)
	row("output_file_id", deref(b.OutputFileID))
	row("error_file_id", deref(b.ErrorFileID))
	row("requests", fmt.Sprintf("%d total, %d completed, %d failed", rc.Total, rc.Completed, rc.Failed))
	row("created_at", unixTime(b.CreatedAt))
	for _, t := range []struct {
		k string
		v *int64
	}{{"in_progress_at", b.InProgressAt}, {"completed_at", b.CompletedAt}, {"failed_at", b.FailedAt},
		{"cancelled_at", b.CancelledAt}, {"expires_at", b.ExpiresAt}} {
		if t.v != nil {
			row(t.k, unixTime(*t.v))
		}
	}
	for k, v := range b.Metadata {
		row("metadata."+k, v)
	}
	_ = tw.Flush()
	printBatchErrors(w, b)
}

// BatchCancelCmd cancels a batch.
type BatchCancelCmd struct {
	remoteFlags `embed:""`
	followFlags `embed:""`
	ID          string `arg:"" placeholder:"BATCH_ID" help:"The batch."`
}

// Run asks to cancel and, with --wait, follows the batch to cancelled.
func (cc *BatchCancelCmd) Run(app *App) error {
	c, err := cc.client()
	if err != nil {
		return err
	}
	b, err := c.CancelBatch(app.Ctx, cc.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(app.Stdout, "%s %s\n", b.ID, b.Status)
	if !cc.Wait {
		return nil
	}
	if b, err = followBatch(app, c, cc.ID, cc.PollInterval); err != nil {
		return err
	}
	fmt.Fprintf(app.Stdout, "%s %s\n", b.ID, b.Status)
	return nil
}

// BatchDownloadCmd downloads a batch's files.
type BatchDownloadCmd struct {
	remoteFlags `embed:""`
	ID          string `arg:"" placeholder:"BATCH_ID" help:"The batch."`
	Output      string `name:"output" short:"o" type:"path" placeholder:"DIR" help:"Directory for BATCH_output.jsonl and BATCH_errors.jsonl. Default: the current directory."`
}

// Run writes the output and error files of the batch (whatever exists so far).
func (d *BatchDownloadCmd) Run(app *App) error {
	c, err := d.client()
	if err != nil {
		return err
	}
	b, err := c.GetBatch(app.Ctx, d.ID)
	if err != nil {
		return err
	}
	return downloadResults(app, c, b, d.Output)
}

func deref(s *string) string {
	if s == nil || *s == "" {
		return "-"
	}
	return *s
}

func unixTime(sec int64) string {
	if sec == 0 {
		return "-"
	}
	return time.Unix(sec, 0).Local().Format(time.DateTime)
}

// The prepare methods check each command's flags before it runs; any problem exits 2.

func (s *BatchSubmitCmd) prepare(*App, func(string) source) error {
	return errors.Join(s.remoteFlags.check(), s.followFlags.check())
}

func (l *BatchListCmd) prepare(*App, func(string) source) error {
	var err error
	if l.Limit < 1 {
		err = fmt.Errorf("--limit %d: must be at least 1", l.Limit)
	}
	return errors.Join(l.check(), err)
}

func (s *BatchStatusCmd) prepare(*App, func(string) source) error {
	return errors.Join(s.remoteFlags.check(), s.followFlags.check())
}

func (cc *BatchCancelCmd) prepare(*App, func(string) source) error {
	return errors.Join(cc.remoteFlags.check(), cc.followFlags.check())
}

func (d *BatchDownloadCmd) prepare(*App, func(string) source) error { return d.check() }
