package function

import "testing"

func TestHandle(t *testing.T) {
	if got, want := Handle([]byte("hi")), "Hello, Go. You said: hi"; got != want {
		t.Errorf("Handle(hi) = %q, want %q", got, want)
	}
}
