package main

import (
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/procfs"
)

// cpuTime returns the CPU time, user and system, the process has used so far (utime+stime of /proc/PID/stat).
func cpuTime(pid int) (time.Duration, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, err
	}
	stat, err := p.Stat()
	if err != nil {
		return 0, err
	}
	return time.Duration(stat.CPUTime() * float64(time.Second)), nil
}

// cpuTimes returns the CPU time the process pid and bench itself have used so far.
func cpuTimes(pid int) (server, bench time.Duration, err error) {
	if server, err = cpuTime(pid); err != nil {
		return 0, 0, err
	}
	bench, err = cpuTime(os.Getpid())
	return server, bench, err
}

// memory returns the process's resident memory in bytes: now (VmRSS) and the most it has had (VmHWM).
func memory(pid int) (rss, peak uint64, err error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, 0, err
	}
	status, err := p.NewStatus()
	if err != nil {
		return 0, 0, err
	}
	return status.VmRSS, status.VmHWM, nil
}

// cpuModel returns the model name of the first CPU, or the architecture where /proc/cpuinfo has none.
func cpuModel() string {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return runtime.GOARCH
	}
	info, err := fs.CPUInfo()
	if err != nil || len(info) == 0 || info[0].ModelName == "" {
		return runtime.GOARCH
	}
	return info[0].ModelName
}

// kernelRelease returns the running kernel's release, such as 6.12.48, or "" where /proc does not say.
func kernelRelease() string {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return ""
	}
	release, _ := fs.SysctlStrings("kernel.osrelease")
	return strings.Join(release, " ")
}
