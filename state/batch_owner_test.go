package state

import "testing"

// TestJobOwnerConformance: both stores keep a file's and a batch's Owner (the tenant
// package batch scopes by) through create, get and list.
func TestJobOwnerConformance(t *testing.T) {
	for name, s := range jobStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			f := FileRecord{ID: "file-owned", CreatedMS: 1, Purpose: "batch", Owner: "t_0123456789abcdef"}
			if err := s.CreateFile(ctx, f); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetFile(ctx, f.ID)
			if err != nil || got.Owner != f.Owner {
				t.Fatalf("file owner %q, %v; want %q", got.Owner, err, f.Owner)
			}
			if list, _, err := s.ListFiles(ctx, FileQuery{Limit: 10}); err != nil || len(list) != 1 || list[0].Owner != f.Owner {
				t.Fatalf("listed files %+v, %v", list, err)
			}
			spec := jobSpec("batch-owned", 100)
			spec.Owner = f.Owner
			if _, err := s.CreateBatch(ctx, spec); err != nil {
				t.Fatal(err)
			}
			b, err := s.GetBatch(ctx, spec.ID)
			if err != nil || b.Owner != f.Owner {
				t.Fatalf("batch owner %q, %v; want %q", b.Owner, err, f.Owner)
			}
			if list, _, err := s.ListBatches(ctx, "", 10); err != nil || len(list) != 1 || list[0].Owner != f.Owner {
				t.Fatalf("listed batches %+v, %v", list, err)
			}
		})
	}
}
