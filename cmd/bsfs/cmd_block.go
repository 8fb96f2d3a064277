package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	mc "github.com/multiformats/go-multicodec"
	mh "github.com/multiformats/go-multihash"
	"github.com/spf13/cobra"

	"github.com/bsfs/bsfs/block"
)

func newBlockCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "block",
		Short: "Store, fetch and remove raw blocks",
	}
	cmd.AddCommand(newBlockPutCmd(), newBlockGetCmd(), newBlockStatCmd(), newBlockRmCmd())
	return cmd
}

// parseCID parses a command-line CID, in any base, v0 or v1.
func parseCID(s string) (cid.Cid, error) {
	c, err := cid.Decode(s)
	if err != nil {
		msg := err.Error()
		for strings.HasPrefix(msg, "invalid cid: ") {
			msg = strings.TrimPrefix(msg, "invalid cid: ")
		}
		return cid.Undef, fmt.Errorf("invalid CID %q: %s", s, msg)
	}
	if err := block.CheckCID(c); err != nil {
		return cid.Undef, err
	}
	return c, nil
}

func newBlockPutCmd() *cobra.Command {
	var (
		codec, mhtype string
		mhlen         int
		version       int
	)
	cmd := &cobra.Command{
		Use:   "put [file|-]",
		Short: "Store a file or stdin as one block and print its CID",
		Long: fmt.Sprintf(`Store the contents of a file, or stdin when the file is - or absent, as
one block, and print its CID. A block holds at most %d bytes.

By default the CID is a CIDv1 with the raw codec and a sha2-256 multihash,
as Kubo's 'ipfs block put' gives. --cid-version 0 is allowed only with
--cid-codec dag-pb and --mhtype sha2-256. With a running daemon, peers that
want the block are sent it.`, block.MaxSize),
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			prefix, err := putPrefix(codec, mhtype, mhlen, version)
			if err != nil {
				return err
			}
			name := "-"
			if len(args) == 1 {
				name = args[0]
			}
			data, err := readInput(cmd.InOrStdin(), name)
			if err != nil {
				return err
			}
			return withNode(cmd.Context(), func(n daemonNode) error { return blockPut(cmd, n, prefix, data) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&codec, "cid-codec", "raw", "multicodec of the CID (raw, dag-pb, dag-cbor, ...)")
	f.StringVar(&mhtype, "mhtype", "sha2-256", "multihash function (sha2-256, sha2-512, blake2b-256, blake3)")
	f.IntVar(&mhlen, "mhlen", -1, "multihash length in bytes; -1 means the function's default")
	f.IntVar(&version, "cid-version", 1, "CID version (0 or 1)")
	return cmd
}

// blockStore is what the block commands use.
type blockStore interface {
	PutBlock(ctx context.Context, prefix cid.Prefix, data []byte) (cid.Cid, error)
	GetBlock(ctx context.Context, c cid.Cid) (block.Block, error)
	BlockSize(ctx context.Context, c cid.Cid) (int, error)
	RemoveBlock(ctx context.Context, c cid.Cid) error
}

func blockPut(cmd *cobra.Command, n blockStore, prefix cid.Prefix, data []byte) error {
	c, err := n.PutBlock(cmd.Context(), prefix, data)
	if err != nil {
		return err
	}
	fmt.Fprintln(cmd.OutOrStdout(), c)
	return nil
}

// putPrefix checks block put's flags and returns the CID prefix they name.
func putPrefix(codec, mhtype string, mhlen, version int) (cid.Prefix, error) {
	var code mc.Code
	if err := code.Set(codec); err != nil {
		return cid.Prefix{}, fmt.Errorf("unknown --cid-codec %q", codec)
	}
	hash, ok := mh.Names[mhtype]
	if !ok {
		return cid.Prefix{}, fmt.Errorf("unknown --mhtype %q", mhtype)
	}
	if mhlen < -1 || mhlen == 0 {
		return cid.Prefix{}, fmt.Errorf("invalid --mhlen %d", mhlen)
	}
	p := cid.Prefix{Version: uint64(version), Codec: uint64(code), MhType: hash, MhLength: mhlen}
	switch version {
	case 1:
	case 0:
		if code != mc.DagPb || hash != mh.SHA2_256 || (mhlen != -1 && mhlen != 32) {
			return cid.Prefix{}, errors.New("--cid-version 0 needs --cid-codec dag-pb and --mhtype sha2-256")
		}
	default:
		return cid.Prefix{}, fmt.Errorf("invalid --cid-version %d: 0 or 1", version)
	}
	return p, nil
}

// readInput reads a block's data from the named file, or stdin for "-".
func readInput(stdin io.Reader, name string) ([]byte, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, block.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(data) > block.MaxSize {
		return nil, fmt.Errorf("%w: %s is over %d bytes", block.ErrTooLarge, name, block.MaxSize)
	}
	return data, nil
}

func newBlockGetCmd() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "get <cid>",
		Short: "Write a block's bytes to stdout",
		Long: `Write the raw bytes of the block <cid> to stdout. With a running daemon a
block not stored locally is fetched from the peers until it arrives,
--timeout passes, or the command is interrupted, which cancels the want.
Without a daemon only the local repository is read.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := parseCID(args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			return withNode(ctx, func(n daemonNode) error { return blockGet(ctx, n, c, timeout, cmd.OutOrStdout()) })
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long (e.g. 30s); 0 waits until interrupted")
	return cmd
}

func blockGet(ctx context.Context, n blockStore, c cid.Cid, timeout time.Duration, out io.Writer) error {
	b, err := n.GetBlock(ctx, c)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("block %s: not found within %s", c, timeout)
	}
	if errors.Is(err, block.ErrNotFound) {
		return fmt.Errorf("block %s not found", c)
	}
	if err != nil {
		return err
	}
	_, err = out.Write(b.Data)
	return err
}

func newBlockStatCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "stat <cid>",
		Short: "Print a stored block's CID and size",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := parseCID(args[0])
			if err != nil {
				return err
			}
			return withNode(cmd.Context(), func(n daemonNode) error { return blockStat(cmd, n, c) })
		},
	}
}

func blockStat(cmd *cobra.Command, n blockStore, c cid.Cid) error {
	size, err := n.BlockSize(cmd.Context(), c)
	if errors.Is(err, block.ErrNotFound) {
		return fmt.Errorf("block %s not found", c)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Key: %s\nSize: %d\n", c, size)
	return nil
}

func newBlockRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rm <cid>...",
		Short: "Remove blocks from the local repository",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cids := make([]cid.Cid, len(args))
			for i, a := range args {
				c, err := parseCID(a)
				if err != nil {
					return err
				}
				cids[i] = c
			}
			return withNode(cmd.Context(), func(n daemonNode) error { return blockRm(cmd, n, cids) })
		},
	}
}

func blockRm(cmd *cobra.Command, n blockStore, cids []cid.Cid) error {
	for _, c := range cids {
		err := n.RemoveBlock(cmd.Context(), c)
		if errors.Is(err, block.ErrNotFound) {
			return fmt.Errorf("cannot remove %s: block not found", c)
		}
		if err != nil {
			return fmt.Errorf("cannot remove %s: %w", c, err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", c)
	}
	return nil
}
