package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestFilesListDelete: files list shows a batch's input and output files, files delete
// removes the output file, and deleting it again fails with exit 1 naming the file.
func TestFilesListDelete(t *testing.T) {
	base, _, _ := startRun(t)
	env := map[string]string{"VLLM_PXY_URL": base}
	_, stdout, _ := cli(t, env, "batch", "submit", writeLines(t, 2, "m"), "-o", t.TempDir(), "--poll-interval", "20ms")
	in := regexp.MustCompile(`as (file-\S+) \((\d+) bytes\)`).FindStringSubmatch(stdout)
	if in == nil {
		t.Fatalf("no file id:\n%s", stdout)
	}
	_, stdout, _ = cli(t, env, "batch", "status", regexp.MustCompile(`created (batch_\S+)`).FindStringSubmatch(stdout)[1])
	outID := regexp.MustCompile(`output_file_id:\s+(file-\S+)`).FindStringSubmatch(stdout)
	if outID == nil {
		t.Fatalf("no output file:\n%s", stdout)
	}
	code, stdout, _ := cli(t, env, "files", "list")
	if code != 0 || !regexp.MustCompile(`(?m)^`+in[1]+`\s+batch\s+`+in[2]+`\s+in\.jsonl\s`).MatchString(stdout) ||
		!regexp.MustCompile(`(?m)^`+outID[1]+`\s+batch_output\s+\d+\s+batch_\S+_output\.jsonl\s`).MatchString(stdout) {
		t.Fatalf("files list = %d:\n%s", code, stdout)
	}
	code, stdout, _ = cli(t, env, "files", "delete", outID[1])
	if code != 0 || stdout != "deleted "+outID[1]+"\n" {
		t.Errorf("files delete = %d %q", code, stdout)
	}
	if _, stdout, _ = cli(t, env, "files", "list"); strings.Contains(stdout, outID[1]) || !strings.Contains(stdout, in[1]) {
		t.Errorf("after the delete, files list shows:\n%s", stdout)
	}
	code, stdout, _ = cli(t, env, "files", "delete", outID[1], "-L", "json")
	if code != 1 || !strings.Contains(stdout, outID[1]) || !strings.Contains(stdout, "404") {
		t.Errorf("deleting twice = %d:\n%s", code, stdout)
	}
}
