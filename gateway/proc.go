package gateway

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// usage is an instance's process tree at one sampling.
type usage struct {
	rss        uint64  // bytes
	cpu        float64 // user and system seconds, of the live processes
	cpuPercent float64 // over the last period of minPercentPeriod or more; 100 is one core
	// base is the sampling cpuPercent is measured from.
	baseCPU float64
	baseAt  time.Time
}

// minPercentPeriod is the shortest period CPUPercent is measured over: a
// scrape right after a sampling would otherwise divide noise by nothing.
const minPercentPeriod = time.Second

// samplePeriod is how often the instances' memory and CPU are read,
// besides at every scrape of /metrics and every Telemetry.
const samplePeriod = 5 * time.Second

// sampleLoop samples until the gateway closes.
func (g *Gateway) sampleLoop() {
	defer g.all.Done()
	t := time.NewTicker(samplePeriod)
	defer t.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
			g.sampleProcs()
		}
	}
}

// sampleProcs reads /proc once and sets the usage of every instance whose
// runner reported its process (Instance.Started): the sum over the process
// and all its descendants, as a pod's cgroup would count them. Where there
// is no /proc, nothing is sampled.
func (g *Gateway) sampleProcs() {
	g.sampleMu.Lock()
	defer g.sampleMu.Unlock()
	var ins []*instance
	g.mu.RLock()
	for _, fn := range g.functions {
		for _, in := range fn.replicas {
			if in.pid.Load() > 0 {
				ins = append(ins, in)
			}
		}
	}
	g.mu.RUnlock()
	if len(ins) == 0 {
		return
	}
	procs, children := readProcs()
	now := time.Now()
	for _, in := range ins {
		root := int(in.pid.Load())
		if _, ok := procs[root]; !ok {
			continue // exited meanwhile
		}
		u := usage{baseAt: now}
		for todo := []int{root}; len(todo) > 0; {
			pid := todo[len(todo)-1]
			todo = append(todo[:len(todo)-1], children[pid]...)
			p := procs[pid]
			u.rss += p.rss
			u.cpu += p.cpu
		}
		u.baseCPU = u.cpu
		if prev := in.usage.Load(); prev != nil {
			switch dt := now.Sub(prev.baseAt); {
			case dt < minPercentPeriod:
				u.cpuPercent, u.baseCPU, u.baseAt = prev.cpuPercent, prev.baseCPU, prev.baseAt
			case u.cpu >= prev.baseCPU:
				u.cpuPercent = 100 * (u.cpu - prev.baseCPU) / dt.Seconds()
			}
		}
		in.usage.Store(&u)
	}
}

type procStat struct {
	rss uint64
	cpu float64
}

// readProcs reads every process's /proc/<pid>/stat: its resident memory
// and CPU seconds, and the children of each process.
func readProcs() (map[int]procStat, map[int][]int) {
	procs, children := map[int]procStat{}, map[int][]int{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return procs, children
	}
	page := uint64(os.Getpagesize())
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone
		}
		// After the command, in parentheses and free to hold anything:
		// state is field 3, ppid 4, utime 14, stime 15, rss 24 (man 5 proc).
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(stat[i+1:])
		if len(f) < 22 {
			continue
		}
		field := func(n int) uint64 {
			v, _ := strconv.ParseUint(string(f[n-3]), 10, 64)
			return v
		}
		// USER_HZ is 100 on every Linux kiln runs on.
		const userHZ = 100
		procs[pid] = procStat{rss: field(24) * page, cpu: float64(field(14)+field(15)) / userHZ}
		ppid := int(field(4))
		children[ppid] = append(children[ppid], pid)
	}
	return procs, children
}
