package backpressure

import (
	"testing"
)

// TestDecodePeerMsg: counts come through between 1 and maxPeerPicks; anything not a
// message is an error.
func TestDecodePeerMsg(t *testing.T) {
	got, err := decodePeerMsg([]byte(`{"picks":{"http://a":3,"http://b":0,"http://c":-4,"http://d":99999999}}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["http://a"] != 3 || got["http://d"] != maxPeerPicks {
		t.Errorf("decoded %v, want a:3 and d:%d only", got, maxPeerPicks)
	}
	for _, bad := range []string{``, `[]`, `{"picks":{"a":"x"}}`, `{"picks":[1]}`, `{"picks":{"a":1e999}}`} {
		if _, err := decodePeerMsg([]byte(bad)); err == nil {
			t.Errorf("decodePeerMsg(%q) accepted", bad)
		}
	}
}

// FuzzDecodePeerMsg: whatever another replica (or anyone with access to Redis) publishes,
// decoding never panics and never yields a count outside 1..maxPeerPicks.
func FuzzDecodePeerMsg(f *testing.F) {
	for _, s := range []string{`{"picks":{"http://a":3}}`, `{}`, `{"picks":null}`, `{"picks":{"":-1}}`, `{"picks":{"a":1.5}}`, `nul`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		picks, err := decodePeerMsg(b)
		if err != nil {
			return
		}
		for backend, n := range picks {
			if n < 1 || n > maxPeerPicks {
				t.Fatalf("count %d for %q from %q", n, backend, b)
			}
		}
	})
}
