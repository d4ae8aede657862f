package gateway

import (
	"context"
	"time"
)

// acquire returns function name in namespace ns and one of its instances
// with a request slot taken, which the caller gives back with release. No
// function is nil, nil. When every ready instance serves max_inflight
// requests, or the only hope is an instance starting again after an exit,
// the request waits, until ctx is done or for the health timeout, and
// waited says so; an instance that exited and waits out its back-off,
// or one whose readiness fails, is not worth waiting for: then the
// instance is nil at once, and why says why for the 503.
func (g *Gateway) acquire(ctx context.Context, name, ns string) (fn *function, in *instance, waited bool, why string) {
	var timeout <-chan time.Time
	for {
		if fn = g.lookup(name, ns); fn == nil {
			return nil, nil, waited, ""
		}
		wake := fn.stats.waitCh()
		if in = fn.take(); in != nil {
			return fn, in, waited, ""
		}
		if !fn.worthWaiting() {
			return fn, nil, waited, fn.notReady()
		}
		if !waited {
			waited = true
			stats := fn.stats
			stats.queued.Add(1)
			defer stats.queued.Add(-1)
			t := time.NewTimer(g.healthTimeout)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return fn, nil, waited, ctx.Err().Error()
		case <-timeout:
			return fn, nil, waited, "no instance was free within " + g.healthTimeout.String()
		}
	}
}

// take takes a request slot of the next ready instance in turn that has
// one, else returns nil.
func (fn *function) take() *instance {
	n := uint64(len(fn.replicas))
	if n == 0 {
		return nil
	}
	start := fn.next.Add(1)
	for i := range n {
		if in := fn.replicas[(start+i)%n]; in.ready.Load() && in.tryTake(int64(fn.maxInflight)) {
			return in
		}
	}
	return nil
}

// worthWaiting says whether a request that found no slot may get one
// soon: a ready instance serves max_inflight requests, or one is starting
// again after its back-off.
func (fn *function) worthWaiting() bool {
	for _, in := range fn.replicas {
		if in.starting.Load() || in.ready.Load() {
			return true
		}
	}
	return false
}

// tryTake takes one of max request slots (0: unlimited), if one is free.
func (in *instance) tryTake(max int64) bool {
	for {
		cur := in.inflight.Load()
		if max > 0 && cur >= max {
			return false
		}
		if in.inflight.CompareAndSwap(cur, cur+1) {
			return true
		}
	}
}

// release gives back a slot tryTake took, and wakes the requests waiting.
func (in *instance) release() {
	in.inflight.Add(-1)
	in.stats.changed()
}
