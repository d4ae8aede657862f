// Package console is the local gateway's function console, served under
// /ui/ behind its login: plain HTML, CSS and JavaScript embedded in the
// kiln binary (no build step, no network), fed by a JSON API under
// /ui/api/. The overview of every function is one call, so that 50
// functions render at once; a function's page polls its telemetry, follows
// its logs through /system/logs and calls it through /function/<name>. The
// charts are uPlot's, vendored under assets/vendor with its licence and
// the sha512 of each file (vendor.go, checked by a test; refreshed by make
// console-vendor).
package console
