//go:build e2e

package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestInterruptedBuilds interrupts builds at many points, all in one cache,
// and wants each to exit 130 with "kiln: interrupted" (or 0, when it
// finished first), and the next whole build in that cache to give a clean
// build's digest: an interrupted build keeps nothing half-made, such as a
// Node binary left unstripped under the stripped one's key.
func TestInterruptedBuilds(t *testing.T) {
	tests := []struct{ name, sample, lang string }{
		{"go", goHello, "golang-middleware"},
		{"node", nodeHello, "node20"},
	}
	delays := []time.Duration{30 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			image := "kiln.local/e2e/interrupt-" + tc.name + ":v1"
			args := []string{"build", sample(tc.sample), "--lang", tc.lang, "--image", image}
			clean := digestOf(t, mustKiln(t, kilnOpts{cache: t.TempDir()}, args...).stdout)

			cache := t.TempDir()
			interrupted := 0
			for _, delay := range delays {
				ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
				cmd := kilnCommand(ctx, kilnOpts{cache: cache}, args...)
				var stderr strings.Builder
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					cancel()
					t.Fatal(err)
				}
				time.Sleep(delay)
				cmd.Process.Signal(os.Interrupt)
				err := cmd.Wait()
				cancel()
				var ee *exec.ExitError
				switch {
				case err == nil:
				case errors.As(err, &ee) && ee.ExitCode() == 130:
					interrupted++
					if !strings.Contains(stderr.String(), "kiln: interrupted") {
						t.Errorf("interrupted after %s: stderr = %q, want it to say kiln: interrupted", delay, stderr.String())
					}
				default:
					t.Errorf("interrupted after %s: %v, want exit 130 (or 0 when done first)\n%s", delay, err, stderr.String())
				}
			}
			if interrupted == 0 {
				t.Errorf("no build was interrupted: every one finished within %s", delays[len(delays)-1])
			}
			if got := digestOf(t, mustKiln(t, kilnOpts{cache: cache}, args...).stdout); got != clean {
				t.Errorf("build after %d interrupted ones: digest = %s, want the clean build's %s", interrupted, got, clean)
			}
		})
	}
}
