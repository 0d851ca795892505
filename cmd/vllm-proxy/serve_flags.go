package main

import (
	"fmt"
	"slices"
	"strings"
)

// settingsFrom returns the serve flags beyond --listen and --backend that were given on
// the command line or in the environment, each as a setting that checks its value and
// lays it on the config. Flags left at their default do not override the file.
func (s *ServeCmd) settingsFrom(src func(flag string) source) []setting {
	var out []setting
	add := func(flag string, set func(cfg *fileConfig) error) {
		if sc := src(flag); sc.kind == "flag" || sc.kind == "env" {
			out = append(out, setting{src: sc, set: set})
		}
	}
	add("policy", func(cfg *fileConfig) error {
		if !slices.Contains(policies(), s.Policy) {
			return fmt.Errorf("want one of %s, got %q", strings.Join(policies(), ", "), s.Policy)
		}
		cfg.Routing.Policy = s.Policy
		return nil
	})
	add("batch-workers", func(cfg *fileConfig) error { cfg.Batch.Workers = s.BatchWorkers; return nil })
	add("files-dir", func(cfg *fileConfig) error {
		if strings.TrimSpace(s.FilesDir) == "" {
			return fmt.Errorf("want a directory path, got an empty string")
		}
		cfg.Batch.FilesDir = s.FilesDir
		return nil
	})
	add("batch-max-concurrent-requests", func(cfg *fileConfig) error {
		if s.BatchMaxConcurrent < 1 {
			return fmt.Errorf("want at least 1, got %d", s.BatchMaxConcurrent)
		}
		cfg.Batch.MaxConcurrentRequests = s.BatchMaxConcurrent
		return nil
	})
	add("batch-lease-ttl", func(cfg *fileConfig) error {
		if s.BatchLeaseTTL <= 0 {
			return fmt.Errorf("want a positive duration, got %s", s.BatchLeaseTTL)
		}
		cfg.Batch.LeaseTTL = s.BatchLeaseTTL
		return nil
	})
	add("backpressure", func(cfg *fileConfig) error { cfg.Batch.BackpressureEnabled = s.BackpressureEnabled; return nil })
	add("backpressure-poll-interval", func(cfg *fileConfig) error {
		if s.BackpressurePollInterval <= 0 {
			return fmt.Errorf("want a positive duration, got %s", s.BackpressurePollInterval)
		}
		cfg.Batch.BackpressurePollInterval = s.BackpressurePollInterval
		return nil
	})
	add("chat-completion-priority", func(cfg *fileConfig) error { cfg.Batch.ChatCompletionPriority = s.ChatPriority; return nil })
	add("batch-priority", func(cfg *fileConfig) error { cfg.Batch.BatchPriority = s.BatchPriority; return nil })
	return out
}
