package gateway

import (
	"strconv"
	"testing"
)

func TestBuilds(t *testing.T) {
	g := New(nil)
	defer g.Close()
	_, next, stop := g.FollowBuilds()
	defer stop()
	for i := range buildsKept + 5 {
		g.RecordBuild(BuildEvent{Function: "fn", Kind: BuildDone, Build: &BuildInfo{Image: "fn:" + strconv.Itoa(i)}})
	}
	recent, _, stopLate := g.FollowBuilds()
	stopLate()
	if len(recent) != buildsKept || recent[0].Build.Image != "fn:5" || recent[0].At.IsZero() {
		t.Errorf("FollowBuilds() gave %d events from %+v, want the last %d, timed", len(recent), recent[0], buildsKept)
	}
	if got := g.LastBuilds()["fn"].Image; got != "fn:"+strconv.Itoa(buildsKept+4) {
		t.Errorf("LastBuilds()[fn].Image = %q, want the last build's", got)
	}
	// A follower that does not read misses events, and the builds go on.
	if got := len(next); got != cap(next) {
		t.Errorf("the idle follower holds %d events, want its buffer full (%d)", got, cap(next))
	}
	if e := <-next; e.Build.Image != "fn:0" {
		t.Errorf("the follower's first event = %+v, want the first build", e)
	}
}
