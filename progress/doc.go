// Package progress renders the workflow's events (project's and dev's)
// as the lines a person reads: on a terminal, in CI logs, in a build Job's
// log. Results go to stdout, the same in every mode; the rest to stderr.
// Choose picks the mode from --progress, -v and --quiet.
//
// Plain, the default of the commands that build (build, up, dev) when
// stderr is no terminal, prints one line per finished step, as it
// finishes:
//
//	hello: download tzdata 2024a-0+deb12u1 (all) 300.6 KB in 41ms
//	hello: layer watchdog 2.5 MB (cached)
//	hello: compile in 1.2s
//	hello: layer handler binary 2.4 MB in 1.3s
//	hello: push 2 layers, 4.9 MB in 800ms
//	hello: built in 1.5s, published to registry in 800ms
//
// That is "FUNCTION: STEP", then what it made or moved ("COUNT UNITs",
// "SIZE"), then "(cached)" or "in DURATION" (to the millisecond under a
// second, to the tenth above). The steps are the layers ("layer NAME",
// with the compressed size), the tools that make them (compile, test, npm
// ci, pip install, jlink, ...), downloads (the bytes fetched) and the
// publish: push, store (the local image store) or write (oci:, tar:), with
// the layers the destination lacked and their bytes. Steps that run at
// once finish in any order; a function's last line is "built". A failed
// step prints no line: the error, one line starting "kiln: " (then a
// tool's output, when it has some), comes last.
//
// Live, the default on a terminal, keeps a line per running step at the
// bottom, with its bytes so far and its seconds, redrawn in place at most
// ten times a second; finished steps print above it as in Plain, and it
// is gone when no step runs. kiln dev --local prints Plain lines instead:
// its functions log to the same terminal while it rebuilds.
//
// Quiet prints results and warnings only. JSON writes every event but the
// results as a JSON object per line (project.JSONLines). Warnings, which
// start "kiln: ", show in every mode but JSON, where they are events too.
package progress
