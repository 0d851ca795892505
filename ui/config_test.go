package ui

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none means valid
	}{
		{"zero is valid", Config{}, nil},
		{"explicit", Config{PollInterval: time.Second, BucketWidth: time.Minute, Window: time.Hour, APIBase: "/proxy"}, nil},
		{"negative", Config{PollInterval: -1, SampleInterval: -time.Second}, []string{"poll_interval must not be negative", "sample_interval must not be negative"}},
		{"poll too fast", Config{PollInterval: time.Millisecond}, []string{"poll_interval must be at least 100ms"}},
		{"bucket too small", Config{BucketWidth: time.Millisecond}, []string{"bucket_width must be at least 1s"}},
		{"window not whole", Config{BucketWidth: 7 * time.Minute}, []string{"whole number of bucket_width"}},
		{"too many buckets", Config{BucketWidth: time.Second, Window: 3 * time.Hour}, []string{"more than 10000 buckets"}},
		{"api base host", Config{APIBase: "//evil.example"}, []string{"api_base"}},
		{"api base trailing slash", Config{APIBase: "/p/"}, []string{"api_base"}},
		{"api base relative", Config{APIBase: "p"}, []string{"api_base"}},
		{"every problem at once", Config{PollInterval: -1, APIBase: "x", BucketWidth: time.Millisecond},
			[]string{"poll_interval", "api_base", "bucket_width"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted %+v", tc.cfg)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v does not wrap ErrInvalidConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	if _, err := New(Config{}, Sources{}, nil, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New without a router: %v, want ErrInvalidConfig", err)
	}
	if _, err := New(Config{PollInterval: -1}, Sources{}, nil, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New with a bad config: %v, want ErrInvalidConfig", err)
	}
}
