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
	b, ok := Inline(c)
	if !ok || !b.CID.Equals(c) || string(b.Data) != "inline" {
		t.Fatalf("Inline: %s %q, %v", b.CID, b.Data, ok)
	}
	empty, err := prefix(1, cid.Raw, mh.IDENTITY, -1).Sum(nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := Inline(empty); !ok || b.Data == nil || len(b.Data) != 0 {
		t.Fatalf("Inline of the empty identity CID: %q (nil %v), %v", b.Data, b.Data == nil, ok)
	}
	other, _ := prefix(1, cid.Raw, mh.SHA2_256, -1).Sum([]byte("inline"))
	if IsIdentity(other) {
		t.Fatal("IsIdentity true for sha2-256")
	}
	if _, ok := Inline(other); ok {
		t.Fatal("Inline answers a sha2-256 CID of non-empty data")
	}
	if _, ok := Inline(cid.Undef); ok {
		t.Fatal("Inline answers the undefined CID")
	}
}

// The empty block is known without asking anyone, under every supported
// hash function and any codec or CID version; nothing else is.
func TestInlineEmpty(t *testing.T) {
	kubo := cid.MustParse("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku") // ipfs add --cid-version=1 of an empty file
	if b, ok := Inline(kubo); !ok || b.Data == nil || len(b.Data) != 0 {
		t.Fatalf("Inline(%s): %q (nil %v), %v", kubo, b.Data, b.Data == nil, ok)
	}
	for _, p := range []cid.Prefix{
		prefix(0, cid.DagProtobuf, mh.SHA2_256, -1),
		prefix(1, cid.Raw, mh.SHA2_256, -1),
		prefix(1, cid.DagProtobuf, mh.SHA2_256, -1),
		prefix(1, cid.DagCBOR, mh.SHA2_256, -1),
		prefix(1, cid.Raw, mh.SHA2_512, -1),
		prefix(1, cid.Raw, mh.BLAKE2B_MIN+31, -1),
		prefix(1, cid.Raw, mh.BLAKE3, -1),
		prefix(1, cid.Raw, mh.BLAKE3, 1),
		prefix(1, cid.Raw, mh.BLAKE3, 64),
		prefix(1, cid.Raw, mh.BLAKE3, 128),
	} {
		c, err := p.Sum(nil)
		if err != nil {
			t.Fatalf("%v: %v", p, err)
		}
		b, ok := Inline(c)
		if !ok || !b.CID.Equals(c) || b.Data == nil || len(b.Data) != 0 {
			t.Fatalf("Inline(%s) (%v): %s %q (nil %v), %v", c, p, b.CID, b.Data, b.Data == nil, ok)
		}
		if _, err := Verified(c, b.Data); err != nil {
			t.Fatalf("Verified(%s, Inline's data): %v", c, err)
		}
		// Built from nil data, the empty block's data is present, not nil.
		if v, err := Verified(c, nil); err != nil || v.Data == nil {
			t.Fatalf("Verified(%s, nil): data nil %v, %v", c, v.Data == nil, err)
		}
		if n, err := New(p, nil); err != nil || n.Data == nil {
			t.Fatalf("New(%v, nil): data nil %v, %v", p, n.Data == nil, err)
		}
		full, err := p.Sum([]byte{0})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := Inline(full); ok {
			t.Fatalf("Inline answers %s (%v), the hash of one zero byte", full, p)
		}
		// The empty digest with its last byte changed is another block.
		dec, err := mh.Decode(c.Hash())
		if err != nil {
			t.Fatal(err)
		}
		digest := bytes.Clone(dec.Digest)
		digest[len(digest)-1] ^= 1
		h, err := mh.Encode(digest, dec.Code)
		if err != nil {
			t.Fatal(err)
		}
		if near := cid.NewCidV1(cid.Raw, h); func() bool { _, ok := Inline(near); return ok }() {
			t.Fatalf("Inline answers %s, one bit off the empty %v digest", near, p)
		}
	}
	// A digest of zero bytes is no digest at all, not the empty block's.
	for _, code := range []uint64{mh.SHA2_256, mh.BLAKE3} {
		h, err := mh.Encode(nil, code)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := Inline(cid.NewCidV1(cid.Raw, h)); ok {
			t.Fatalf("Inline answers a %s CID with an empty digest", mh.Codes[code])
		}
	}
	// Hashes bsfs does not support are not answered, even over zero bytes.
	sha3, err := prefix(1, cid.Raw, mh.SHA3_256, -1).Sum(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := Inline(sha3); ok {
		t.Fatal("Inline answers sha3-256, which bsfs does not support")
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

func TestStream(t *testing.T) {
	s := NewStream()
	b := Block{Data: []byte("x")}
	gone := make(chan struct{})
	close(gone)
	if s.Send(b, gone) {
		t.Fatal("Send without a reader, done closed, succeeded")
	}
	go func() {
		if !s.Send(b, nil) {
			t.Error("Send to a reader failed")
		}
		s.Close(ErrNotFound)
	}()
	if got := <-s.C(); string(got.Data) != "x" {
		t.Fatalf("got %q", got.Data)
	}
	if _, ok := <-s.C(); ok {
		t.Fatal("a block after the end")
	}
	if s.Err() != ErrNotFound {
		t.Fatalf("Err %v, want the one Close was given", s.Err())
	}
}
