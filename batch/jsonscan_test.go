package batch

import (
	"bytes"
	"encoding/json"
	"testing"
)

// checkObjectFields compares objectFields with encoding/json on a valid object: same
// keys, and each key's last value equal after compaction.
func checkObjectFields(t *testing.T, in []byte) {
	t.Helper()
	if !json.Valid(in) {
		return // objectFields is only ever given valid JSON
	}
	var want map[string]json.RawMessage
	if json.Unmarshal(in, &want) != nil || want == nil {
		if objectFields(in, func(string, []byte) bool { return true }) {
			t.Fatalf("objectFields accepted %q that is no object", in)
		}
		return
	}
	got := map[string][]byte{}
	if !objectFields(in, func(k string, v []byte) bool { got[k] = v; return true }) {
		t.Fatalf("objectFields refused the object %q", in)
	}
	if len(got) != len(want) {
		t.Fatalf("%q: %d keys, encoding/json %d", in, len(got), len(want))
	}
	for k, w := range want {
		var a, b bytes.Buffer
		if err := json.Compact(&a, got[k]); err != nil {
			t.Fatalf("%q: key %q value %q: %v", in, k, got[k], err)
		}
		_ = json.Compact(&b, w)
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatalf("%q: key %q = %s, encoding/json %s", in, k, a.Bytes(), b.Bytes())
		}
	}
}

var objectFieldsSeeds = []string{
	`{}`,
	` { "a" : 1 , "b":[1,{"c":"}"}], "d":"x\"}y", "e":null,"f":true,"g":-1.5e3 } `,
	`{"custom_id":"a","custom_id":"b"}`,
	`{"cust\u006fm_id":"esc","url":"\\\\"}`,
	`{"body":{"model":"m","messages":[{"content":"a\\\"b"}]},"x":"\\"}`,
	`{"a":"\\\\\\""}`,
	"{\"a\":\"\tb\"}",
	`[1,2]`,
	`"str"`,
}

func TestObjectFields(t *testing.T) {
	for _, s := range objectFieldsSeeds {
		checkObjectFields(t, []byte(s))
	}
	line := []byte(`{"Custom_ID":"x","custom_id":"a\u00e9","method":"POST","url":"/v1/chat/completions","body":{"model":"m\"1","stream":false,"messages":[{"role":"user","content":"}{"}]}}`)
	tl, ok := scanTaskLine(line)
	id, _ := jsonString(tl.customID)
	b, bok := scanBody(tl.body)
	model, _ := jsonString(b.model)
	if !ok || !bok || id != "aé" || model != `m"1` || string(b.stream) != "false" || !bytes.HasPrefix(b.messages, []byte(`[{"role"`)) {
		t.Fatalf("scanned %+v %+v id %q model %q", tl, b, id, model)
	}
}

// FuzzObjectFields: on every valid JSON object, objectFields finds the same members as
// encoding/json (which validation relies on instead of decoding each line twice).
func FuzzObjectFields(f *testing.F) {
	for _, s := range objectFieldsSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkObjectFields(t, in) })
}
