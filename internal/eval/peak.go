package eval

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// peakRSSMiB is the process's peak resident memory so far (VmHWM), in MiB, or 0 where the
// system does not say (only Linux does, through /proc). Recorded in run.json, it tells what
// memory to ask the scheduler for.
func peakRSSMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			fields := strings.Fields(rest)
			if len(fields) == 2 && fields[1] == "kB" {
				kb, err := strconv.ParseFloat(fields[0], 64)
				if err == nil {
					return kb / 1024
				}
			}
		}
	}
	return 0
}
