package cache

import (
	"fmt"
	"strconv"
	"strings"
)

// unit is a suffix ParseSize knows.
type unit struct {
	suffix string
	mult   int64
}

// units are the suffixes ParseSize knows, longest first within a letter.
func units() []unit {
	return []unit{
		{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
		{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"kB", 1e3},
		{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"k", 1 << 10},
		{"B", 1},
	}
}

// ParseSize parses a quota: a whole number of bytes with an optional unit
// (KiB, MiB, GiB, TiB; KB, MB, GB, TB in powers of ten; K, M, G, T in
// powers of two), such as "10GiB" or "512M". "" is 0 (the default quota),
// "none" is -1 (no quota), and a size of 0 is refused.
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "":
		return 0, nil
	case "none":
		return -1, nil
	}
	num, mult := s, int64(1)
	for _, u := range units() {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q: want a number of bytes with an optional unit, such as 10GiB, or \"none\"", s)
	}
	if n == 0 {
		return 0, fmt.Errorf("invalid size %q: a quota of 0 keeps nothing (\"none\" means no quota)", s)
	}
	if n > (1<<63-1)/mult {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return n * mult, nil
}
