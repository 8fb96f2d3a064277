package node

import (
	"slices"
	"testing"
)

func TestParseMounts(t *testing.T) {
	mounts := `/dev/vda / ext4 rw 0 0
ipfs /w/kubo-1.mnt/ipfs fuse.rawBridge rw 0 0
memfile /w/memfile-0.mnt fuse.memfile rw 0 0
other /elsewhere fuse.x rw 0 0
tmpfs /w/tmp tmpfs rw 0 0
deep /w/a/b/c fuse rw 0 0
`
	got := parseMounts(mounts, "/w")
	want := []string{"/w/kubo-1.mnt/ipfs", "/w/memfile-0.mnt", "/w/a/b/c"}
	slices.Sort(want)
	if !slices.Equal(slices.Sorted(slices.Values(got)), want) {
		t.Fatalf("parseMounts = %v, want %v", got, want)
	}
	if len(got[0]) < len(got[len(got)-1]) {
		t.Errorf("not deepest first: %v", got)
	}
}

func TestStatusField(t *testing.T) {
	status := "Name:\tbsfs\nVmHWM:\t   88232 kB\nVmRSS:\t   61000 kB\nThreads:\t9\n"
	for field, want := range map[string]int64{"VmHWM": 88232 << 10, "VmRSS": 61000 << 10} {
		if got, err := statusField(status, field); err != nil || got != want {
			t.Errorf("statusField(%s) = %d, %v; want %d", field, got, err, want)
		}
	}
	if _, err := statusField(status, "VmSwap"); err == nil {
		t.Error("statusField of a missing field: no error")
	}
	if _, err := statusField("VmRSS:\tlots kB\n", "VmRSS"); err == nil {
		t.Error("statusField of a bad number: no error")
	}
}
