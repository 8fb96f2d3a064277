package block

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

func prefix(version uint64, codec, hash uint64, length int) cid.Prefix {
	return cid.Prefix{Version: version, Codec: codec, MhType: hash, MhLength: length}
}

func TestNewAndVerifiedEachHash(t *testing.T) {
	data := []byte("hello bsfs")
	for _, p := range []cid.Prefix{
		prefix(0, cid.DagProtobuf, mh.SHA2_256, -1),
		prefix(1, cid.Raw, mh.SHA2_256, -1),
		prefix(1, cid.Raw, mh.SHA2_512, -1),
		prefix(1, cid.Raw, mh.BLAKE2B_MIN+31, -1),
		prefix(1, cid.Raw, mh.BLAKE3, -1),
		prefix(1, cid.Raw, mh.BLAKE3, 64),
		prefix(1, cid.DagCBOR, mh.SHA2_256, -1),
		prefix(1, cid.Raw, mh.IDENTITY, -1),
	} {
		b, err := New(p, data)
		if err != nil {
			t.Fatalf("New %v: %v", p, err)
		}
		if _, err := Verified(b.CID, data); err != nil {
			t.Fatalf("Verified %s: %v", b.CID, err)
		}
		bad := append(bytes.Clone(data), '!')
		if _, err := Verified(b.CID, bad); !errors.Is(err, ErrHashMismatch) {
			t.Fatalf("Verified %s with other bytes: %v, want ErrHashMismatch", b.CID, err)
		}
	}
}

func TestLimits(t *testing.T) {
	p := prefix(1, cid.Raw, mh.SHA2_256, -1)
	if _, err := New(p, make([]byte, MaxSize)); err != nil {
		t.Fatalf("block of exactly MaxSize: %v", err)
	}
	if _, err := New(p, make([]byte, MaxSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("block over MaxSize: %v, want ErrTooLarge", err)
	}
	long, err := prefix(1, cid.Raw, mh.IDENTITY, -1).Sum(make([]byte, 200))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckCID(long); !errors.Is(err, ErrCIDTooLong) {
		t.Fatalf("200-byte identity CID: %v, want ErrCIDTooLong", err)
	}
	md5, err := prefix(1, cid.Raw, mh.MD5, -1).Sum([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckCID(md5); !errors.Is(err, ErrUnsupportedCID) {
		t.Fatalf("md5 CID: %v, want ErrUnsupportedCID", err)
	}
	short, err := mh.Encode(make([]byte, 0), mh.SHA2_256)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckCID(cid.NewCidV1(cid.Raw, short)); !errors.Is(err, ErrUnsupportedCID) {
		t.Fatalf("zero-length sha2-256 digest: %v, want ErrUnsupportedCID", err)
	}
	if err := CheckCID(cid.Undef); !errors.Is(err, ErrUnsupportedCID) {
		t.Fatalf("undefined CID: %v", err)
	}
}

func TestIdentity(t *testing.T) {
	c, err := prefix(1, cid.Raw, mh.IDENTITY, -1).Sum([]byte("inline"))
	if err != nil {
		t.Fatal(err)
	}
	if !IsIdentity(c) {
		t.Fatal("IsIdentity false for an identity CID")
	}
	b, err := Identity(c)
	if err != nil || string(b.Data) != "inline" {
		t.Fatalf("Identity: %q, %v", b.Data, err)
	}
	other, _ := prefix(1, cid.Raw, mh.SHA2_256, -1).Sum([]byte("inline"))
	if IsIdentity(other) {
		t.Fatal("IsIdentity true for sha2-256")
	}
	if _, err := Identity(other); !errors.Is(err, ErrUnsupportedCID) {
		t.Fatalf("Identity of sha2-256 CID: %v", err)
	}
}

func TestChecked(t *testing.T) {
	p := prefix(1, cid.Raw, mh.SHA2_256, -1)
	b, err := New(p, []byte("x"))
	if err != nil || !b.Checked() {
		t.Fatalf("New: checked %v, %v", b.Checked(), err)
	}
	v, err := Verified(b.CID, b.Data)
	if err != nil || !v.Checked() {
		t.Fatalf("Verified: checked %v, %v", v.Checked(), err)
	}
	if (Block{CID: b.CID, Data: []byte("y")}).Checked() {
		t.Fatal("a Block built by hand claims to be checked")
	}
}
