// Package step reports the steps of a build while they run: a layer, a
// compile, a download, a push, with the bytes they move. Libraries call
// Start where a step's work begins and End where it ends; the events go
// to the Sink the context carries (project names the function), and
// nowhere when the context carries none, so a library costs nothing to
// instrument. Byte progress is rate-limited per step (ProgressEvery).
package step
