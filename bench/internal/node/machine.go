package node

import (
	"fmt"
	"os"
	"runtime"
	"strings"
)

// Machine describes this machine for a results file: "2 cores, <CPU
// model>, 24 GiB RAM, Linux <release>".
func Machine() string {
	return fmt.Sprintf("%d cores, %s, %s, Linux %s", runtime.NumCPU(), cpuModel(), memTotal(), kernel())
}

func cpuModel() string {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	raw, _ := os.ReadFile("/proc/meminfo")
	var kb int64
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			fmt.Sscan(strings.TrimSpace(v), &kb)
		}
	}
	return fmt.Sprintf("%d GiB RAM", (kb+(1<<19))>>20)
}

func kernel() string {
	raw, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(raw))
}
