package main

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/internal/dagwalk"
	"github.com/bsfs/bsfs/internal/progress"
	"github.com/bsfs/bsfs/unixfs"
)

func newDagCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dag",
		Short: "Look at whole DAGs",
	}
	cmd.AddCommand(newDagStatCmd())
	return cmd
}

// dagStat is one DAG's figures, and dagSummary all of them, as Kubo's
// 'ipfs dag stat' prints them.
type dagStat struct {
	cid    string
	blocks int64
	size   uint64
}

type dagSummary struct {
	dags      []dagStat
	unique    int
	total     uint64 // the distinct blocks' bytes
	redundant uint64 // the DAGs' sizes added up
}

func newDagStatCmd() *cobra.Command {
	var showProgress, quiet bool
	cmd := &cobra.Command{
		Use:   "stat CID[/PATH]...",
		Short: "Count the blocks and bytes of DAGs, fetching what is missing",
		Long: `Walk each DAG named and print, as Kubo's 'ipfs dag stat' does, the
number of its distinct blocks and their size in bytes, then a summary of
all of them: their distinct blocks' total size and count, what they share
and the ratio of the sizes added up to the total. Every block is fetched:
with a running daemon missing blocks come from its peers, otherwise only
local blocks are read. A progress bar of the blocks walked shows on
stderr when it is a terminal, unless --progress=false or -q. Only dag-pb
and raw blocks are walked.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDagStat(cmd, args, progressTo(cmd, quiet || !showProgress))
		},
	}
	cmd.Flags().BoolVarP(&showProgress, "progress", "p", true, "show progress on stderr when it is a terminal")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "draw no progress bar")
	return cmd
}

func runDagStat(cmd *cobra.Command, args []string, stderr io.Writer) error {
	ctx := cmd.Context()
	return withNode(ctx, func(n daemonNode) error {
		roots, err := resolveAll(ctx, unixfs.New(n, unixfs.Config{}), args)
		if err != nil {
			return offlineHint(err, n.Online())
		}
		bar := progress.NewBlocks(stderr, "walking")
		var sum dagSummary
		seen := map[string]bool{}
		var blocks, bytes int64
		count := func(k string, size int) {
			d := &sum.dags[len(sum.dags)-1]
			d.blocks++
			d.size += uint64(size)
			sum.redundant += uint64(size)
			if !seen[k] {
				seen[k] = true
				sum.total += uint64(size)
			}
			blocks++
			bytes += int64(size)
			bar.Set(blocks, bytes)
		}
		for _, root := range roots {
			sum.dags = append(sum.dags, dagStat{cid: root.String()})
			// Each DAG's walk visits its blocks once; the root is counted
			// when the walk returns its size.
			w := dagwalk.New(n.NewSession(ctx), dagwalk.Options{MaxDepth: -1, Unique: true})
			size, err := w.Walk(ctx, root, func(e dagwalk.Edge) error {
				count(block.Key(e.To), e.Size)
				return nil
			})
			if err != nil {
				bar.Done()
				return offlineHint(fmt.Errorf("error traversing DAG: %w", err), n.Online())
			}
			count(block.Key(root), size)
		}
		bar.Done()
		sum.unique = len(seen)
		return printDagStat(cmd.OutOrStdout(), sum)
	})
}

// printDagStat writes s in Kubo's layout.
func printDagStat(out io.Writer, s dagSummary) error {
	w := bufio.NewWriter(out)
	fmt.Fprintln(w)
	cw := csv.NewWriter(w)
	cw.Comma = '\t'
	width := len(s.dags[0].cid)
	rows := [][]string{{fmt.Sprintf("%-*s", width, "CID"), fmt.Sprintf("%-15s", "Blocks"), "Size"}}
	for _, d := range s.dags {
		rows = append(rows, []string{d.cid, fmt.Sprintf("%-15d", d.blocks), fmt.Sprint(d.size)})
	}
	if err := cw.WriteAll(rows); err != nil {
		return err
	}
	ratio := float32(s.redundant) / float32(s.total)
	shared := s.redundant - s.total
	fmt.Fprintf(w, "\nSummary\nTotal Size: %d (%s)\nUnique Blocks: %d\nShared Size: %d (%s)\nRatio: %f\n\n\n",
		s.total, humanize.Bytes(s.total), s.unique, shared, humanize.Bytes(shared), ratio)
	return w.Flush()
}
