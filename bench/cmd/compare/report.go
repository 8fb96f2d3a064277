package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/bsfs/bsfs/bench/internal/node"
	"github.com/bsfs/bsfs/bench/internal/stat"
)

// The tables of the results: fetches between two daemons, one column per
// pairing; reads through FUSE mounts, one column per mount; and bsfs's
// scale rows, the measure next to its target.
const (
	tablePairs  = "pairs"
	tableMounts = "mounts"
	tableScale  = "scale"
)

// results holds every row measured, in order.
type results struct {
	rows []*row
}

// row is one measured quantity and its samples per column.
type row struct {
	table        string
	name, unit   string
	higherBetter bool
	cells        map[string]*cell
}

// cell is a column's samples, or why there are none.
type cell struct {
	samples []float64
	skipped string
	errs    []string
}

func (res *results) row(table, name, unit string, higherBetter bool) *row {
	r := &row{table: table, name: name, unit: unit, higherBetter: higherBetter, cells: map[string]*cell{}}
	res.rows = append(res.rows, r)
	return r
}

func (r *row) cell(col string) *cell {
	c := r.cells[col]
	if c == nil {
		c = &cell{}
		r.cells[col] = c
	}
	return c
}

func (r *row) add(col string, v float64)   { c := r.cell(col); c.samples = append(c.samples, v) }
func (r *row) skip(col string, why string) { r.cell(col).skipped = why }
func (r *row) fail(col string, err error) {
	c := r.cell(col)
	c.errs = append(c.errs, node.OneLine(err.Error()))
}
func (r *row) median(col string) (float64, bool) {
	c := r.cells[col]
	if c == nil || len(c.samples) == 0 {
		return 0, false
	}
	return stat.Median(c.samples), true
}

// format prints a cell: the median, and with more than one sample the
// range, as "62.1 (58.0–66.3)".
func (c *cell) format() string {
	switch {
	case c == nil:
		return "–"
	case len(c.samples) == 0 && c.skipped != "":
		return c.skipped
	case len(c.samples) == 0 && len(c.errs) > 0:
		return "failed"
	case len(c.samples) == 0:
		return "–"
	}
	s := num(stat.Median(c.samples))
	if len(c.samples) > 1 {
		s += fmt.Sprintf(" (%s–%s)", num(slices.Min(c.samples)), num(slices.Max(c.samples)))
	}
	if len(c.errs) > 0 {
		s += fmt.Sprintf(", %d failed", len(c.errs))
	}
	return s
}

// num prints with three significant digits or so.
func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// ratio prints the median of q.col over the median of q.base. Its mark
// says whether bsfs is better ("▲") or worse ("▼") by more than 5%; or,
// when the base is a target, whether the target is met ("✓") or not ("✗").
func (r *row) ratio(q ratio) string {
	a, ok1 := r.median(q.col)
	b, ok2 := r.median(q.base)
	if !ok1 || !ok2 || b == 0 {
		return "–"
	}
	v := a / b
	mark := ""
	better := v > 1 == r.higherBetter
	switch {
	case q.target && (better || v == 1):
		mark = " ✓"
	case q.target:
		mark = " ✗"
	case v > 0.95 && v < 1.05:
	case better:
		mark = " ▲"
	default:
		mark = " ▼"
	}
	return fmt.Sprintf("%.2f%s", v, mark)
}

// ratio is a quotient column of a table: a column over its base, which
// may be a target (at most for a row where lower is better, at least
// otherwise).
type ratio struct {
	title, col, base string
	target           bool
}

// has reports whether the table has a row.
func (res *results) has(table string) bool {
	return slices.ContainsFunc(res.rows, func(r *row) bool { return r.table == table })
}

func (res *results) writeTable(w io.Writer, table string, cols []string, ratios []ratio) {
	head := append([]string{"", "unit", "better"}, cols...)
	for _, q := range ratios {
		head = append(head, q.title)
	}
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat(" --- |", len(head)))
	for _, r := range res.rows {
		if r.table != table {
			continue
		}
		better := "lower"
		if r.higherBetter {
			better = "higher"
		}
		line := []string{r.name, r.unit, better}
		for _, c := range cols {
			line = append(line, r.cells[c].format())
		}
		for _, q := range ratios {
			line = append(line, r.ratio(q))
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(line, " | "))
	}
}

// writeErrors lists every failure met, so that a "failed" cell has its
// reason in the file.
func (res *results) writeErrors(w io.Writer) {
	first := true
	for _, r := range res.rows {
		for _, col := range slices.Sorted(maps.Keys(r.cells)) {
			for _, e := range r.cells[col].errs {
				if first {
					fmt.Fprintf(w, "\n### Failures\n\n")
					first = false
				}
				fmt.Fprintf(w, "- %s, %s: %s\n", r.name, col, e)
			}
		}
	}
}
