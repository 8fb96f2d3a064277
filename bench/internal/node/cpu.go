package node

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/PID/stat: USER_HZ, which
// Linux fixes at 100 for user space on the architectures Go runs on.
const userHZ = 100

// CPUTime returns the CPU time the daemon has used so far, user and
// system, summed over its threads (those gone included): utime + stime of
// /proc/PID/stat, to 10 ms. Children it waited for are not counted.
func (d *Proc) CPUTime() (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.Pid()))
	if err != nil {
		return 0, err
	}
	return statCPU(string(raw))
}

// statCPU returns utime + stime of a /proc/PID/stat text. The command
// name, in parentheses, may hold spaces and parentheses itself, so the
// fields are counted from the last ")".
func statCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat %q: no command name", OneLine(stat))
	}
	// After the name: state (field 3) ... utime (14), stime (15).
	f := strings.Fields(stat[i+1:])
	const utime, stime = 14 - 3, 15 - 3
	if len(f) <= stime {
		return 0, fmt.Errorf("/proc stat %q: %d fields after the name", OneLine(stat), len(f))
	}
	var ticks int64
	for _, s := range []string{f[utime], f[stime]} {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("/proc stat: CPU time %q", s)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}
