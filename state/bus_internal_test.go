package state

import "testing"

// TestEnvelope: a framed message comes back as it was, whatever the replica id holds.
func TestEnvelope(t *testing.T) {
	for _, c := range []struct{ from, msg string }{{"a", "x"}, {"", ""}, {"h:1:2", "3:abc"}, {"é\x00", "{}"}} {
		from, msg, ok := decodeEnvelope(encodeEnvelope(c.from, []byte(c.msg)))
		if !ok || from != c.from || string(msg) != c.msg {
			t.Errorf("round trip of (%q, %q) = (%q, %q, %v)", c.from, c.msg, from, msg, ok)
		}
	}
	for _, bad := range []string{"", "x", ":a", "5:ab", "-1:a", "01:ab", "+1:ab", "99999:a"} {
		if from, msg, ok := decodeEnvelope(bad); ok {
			t.Errorf("decodeEnvelope(%q) = (%q, %q), want not ok", bad, from, msg)
		}
	}
}

// FuzzDecodeEnvelope feeds arbitrary payloads (anything with access to Redis may publish
// on the channel): decoding never panics, and what it accepts frames back to itself.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range []string{"", "1:ax", "0:", "3:abc{}", "12:a", "-1:", "01:a", "9999:x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		from, msg, ok := decodeEnvelope(payload)
		if ok && encodeEnvelope(from, msg) != payload {
			t.Fatalf("decodeEnvelope(%q) = (%q, %q), which frames to %q", payload, from, msg, encodeEnvelope(from, msg))
		}
	})
}
