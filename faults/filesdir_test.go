package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

// filesDir is a --files-dir that a test can fill up or make read-only for real. Where
// the test may mount (root with CAP_SYS_ADMIN) it is a 256 KiB tmpfs mounted in the
// proxy's own mount namespace (unshare -m), so a full disk is ENOSPC and read-only is a
// read-only remount (EROFS); the mount vanishes with the process. Elsewhere it is a
// plain directory: full is a 256 KiB file size limit on the proxy (prlimit --fsize,
// EFBIG) and read-only is chmod 0555, with the proxy run as nobody when the test runs
// as root (root ignores file modes).
type filesDir struct {
	t     *testing.T
	path  string
	mount bool // tmpfs in the proxy's mount namespace
	pid   int
}

const filesDirLimit = 256 << 10

func newFilesDir(t *testing.T) (*filesDir, procOpts) {
	t.Helper()
	base := t.TempDir()
	d := &filesDir{t: t, path: filepath.Join(base, "files")}
	if err := os.Mkdir(d.path, 0o755); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`mount -t tmpfs -o size=%d,mode=0755 tmpfs "$0" && exec "$@"`, filesDirLimit)
	wrap := []string{"unshare", "-m", "--propagation", "private", "--", "sh", "-c", script, d.path}
	// VLLM_PXY_FAULTS_NOMOUNT=1 forces the plain-directory variant, to test it as root.
	if os.Geteuid() == 0 && os.Getenv("VLLM_PXY_FAULTS_NOMOUNT") == "" && exec.Command(wrap[0], append(wrap[1:], "true")...).Run() == nil {
		d.mount = true
		return d, procOpts{Wrap: wrap}
	}
	o := procOpts{Wrap: []string{"prlimit", fmt.Sprintf("--fsize=%d", filesDirLimit), "--"}}
	if os.Geteuid() == 0 {
		const nobody = 65534
		o.Cred = &syscall.Credential{Uid: nobody, Gid: nobody}
		for _, p := range []string{filepath.Dir(base), base} {
			if err := os.Chmod(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chown(d.path, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	return d, o
}

// view is the directory as the proxy sees it (through its mount namespace).
func (d *filesDir) view() string {
	if d.mount {
		return fmt.Sprintf("/proc/%d/root%s", d.pid, d.path)
	}
	return d.path
}

// setReadOnly switches the directory between read-only and writable.
func (d *filesDir) setReadOnly(ro bool) {
	d.t.Helper()
	if !d.mount {
		mode := os.FileMode(0o755)
		if ro {
			mode = 0o555
		}
		if err := os.Chmod(d.path, mode); err != nil {
			d.t.Fatal(err)
		}
		return
	}
	opt := "remount,rw"
	if ro {
		opt = "remount,ro"
	}
	out, err := exec.Command("nsenter", "-t", fmt.Sprint(d.pid), "-m", "--", "mount", "-o", opt, d.path).CombinedOutput()
	if err != nil {
		d.t.Fatalf("mount -o %s: %v: %s", opt, err, out)
	}
}

// names lists the directory's entries.
func (d *filesDir) names() []string {
	d.t.Helper()
	es, err := os.ReadDir(d.view())
	if err != nil {
		d.t.Fatalf("listing the files dir: %v", err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// jsonl returns about size bytes of valid batch input.
func jsonl(size int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, `{"custom_id":"c%d","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"%s"}]}}`+"\n", i, strings.Repeat("x", 200))
	}
	return b.Bytes()
}

// TestFilesDirFullOrReadOnly: the --files-dir store fills up, then becomes read-only,
// then writable again. Expected: an upload that does not fit, and any upload while
// read-only, gets an OpenAI-shaped 500 (type server_error, no internals in the
// message); nothing is corrupted: a file stored before still downloads byte for byte,
// no partial blob or temporary file is left, the failed upload is not listed; and
// uploads work again once there is room or the directory is writable.
func TestFilesDirFullOrReadOnly(t *testing.T) {
	t.Parallel()
	be := startSim(t, sim.Config{Instant: true}).URL()
	d, o := newFilesDir(t)
	px, _ := startProxy(t, "proxy", proxyConfig{Backends: []string{be}}, "", []string{"--files-dir", d.path}, o)
	d.pid = px.Pid()
	c := newClient(t)

	small := jsonl(20 << 10)
	keep := mustUpload(t, c, px.URL, small)
	expectStoreError := func(why string, content []byte) {
		t.Helper()
		status, body := uploadFile(t, c, px.URL, "input.jsonl", bytes.NewReader(content))
		if status != http.StatusInternalServerError {
			t.Fatalf("%s: upload answered %d %.300s, want 500", why, status, body)
		}
		msg, typ := openAIError(t, body)
		if typ != "server_error" || strings.Contains(msg, d.path) || strings.Contains(msg, "tmpfs") {
			t.Errorf("%s: error type %q message %q", why, typ, msg)
		}
		if got := fileContent(t, c, px.URL, keep); !bytes.Equal(got, small) {
			t.Errorf("%s: the file stored before changed (%d bytes, want %d)", why, len(got), len(small))
		}
		names := d.names()
		if len(names) != 1 || names[0] != keep {
			t.Errorf("%s: files dir holds %q, want only %s", why, names, keep)
		}
		var list struct{ Data []struct{ ID string } }
		if err := doJSON(t, c, http.MethodGet, px.URL+"/v1/files", "", &list); err != nil || len(list.Data) != 1 {
			t.Errorf("%s: file list %+v (%v), want only %s", why, list, err, keep)
		}
	}

	expectStoreError("store full", jsonl(2*filesDirLimit))
	after := mustUpload(t, c, px.URL, jsonl(10<<10)) // the failed upload freed its space
	if err := deleteFile(t, c, px.URL, after); err != nil {
		t.Fatal(err)
	}
	d.setReadOnly(true)
	expectStoreError("read-only", jsonl(10<<10))
	d.setReadOnly(false)
	mustUpload(t, c, px.URL, jsonl(10<<10))
	how := "256 KiB tmpfs (ENOSPC), read-only remount (EROFS)"
	if !d.mount {
		how = "256 KiB RLIMIT_FSIZE (EFBIG), chmod 0555"
	}
	result(t, "%s: uploads that did not fit or hit read-only got an OpenAI 500 server_error; stored file intact; no partial or temporary blob; uploads resumed", how)
}

// deleteFile deletes a file through the API.
func deleteFile(t *testing.T, c *http.Client, base, id string) error {
	var v json.RawMessage
	return doJSON(t, c, http.MethodDelete, base+"/v1/files/"+id, "", &v)
}
