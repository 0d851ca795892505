package auth

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseKeys(t *testing.T) {
	upper := strings.ToUpper(hashed(keyB)[len(hashPrefix):])
	in := "# operators' keys\n\n  " + keyA + "  \r\nsha256:" + upper + "\n#sk-commented\n"
	got, err := ParseKeys(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{keyA, hashed(keyB)}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for _, bad := range []string{"sk one", "sha256:abc", "sha256:" + strings.Repeat("g", 64), "a,b", "k\x00"} {
		_, err := ParseKeys(strings.NewReader("ok\n" + bad + "\n"))
		if !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), bad) {
			t.Errorf("%q: error %v, want ErrBadKey on line 2", bad, err)
		}
	}
	if _, err := ParseKeys(strings.NewReader(strings.Repeat("x", maxKeyLine+1))); err == nil {
		t.Error("over-long line accepted")
	}
}

func TestParseKeyList(t *testing.T) {
	got, err := ParseKeyList(" " + keyA + ",," + hashed(keyB) + " ,")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{keyA, hashed(keyB)}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, err := ParseKeyList("a,sha256:12"); !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), "entry 2") {
		t.Fatalf("error %v, want ErrBadKey for entry 2", err)
	}
	if got, err := ParseKeyList(""); err != nil || len(got) != 0 {
		t.Fatalf("empty list: %q, %v", got, err)
	}
}

func FuzzParseKeys(f *testing.F) {
	for _, s := range []string{"", "k\n", "# c\n  a \n\nb", "sha256:" + strings.Repeat("ab", 32), "sha256:x", "a b", "a,b", "\xff", "k\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		keys, err := ParseKeys(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, k := range keys {
			if k == "" || strings.ContainsAny(k, " \t\r\n,") || strings.HasPrefix(k, "#") {
				t.Fatalf("bad key %q accepted", k)
			}
			if strings.HasPrefix(k, hashPrefix) && len(k) != len(hashPrefix)+64 {
				t.Fatalf("bad hashed key %q accepted", k)
			}
			if TenantOf(k) == "" {
				t.Fatalf("no tenant for %q", k)
			}
		}
		again, err := ParseKeys(strings.NewReader(strings.Join(keys, "\n")))
		if err != nil || !slices.Equal(again, keys) {
			t.Fatalf("parsed keys do not round-trip: %q -> %q, %v", keys, again, err)
		}
	})
}
