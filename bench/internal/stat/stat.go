// Package stat summarises the samples the benchmark scripts take.
package stat

import "slices"

// Median returns the median of a non-empty sample, leaving s as it is.
func Median(s []float64) float64 {
	s = slices.Sorted(slices.Values(s))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
