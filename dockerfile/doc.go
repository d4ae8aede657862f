// Package dockerfile builds images from Dockerfiles without a daemon.
//
// Build parses with BuildKit's parser and instruction types, expands
// ARG and ENV with BuildKit's shell lexer, and runs the stages the target
// needs in order. Metadata instructions change the image config and
// history only; COPY, ADD and WORKDIR write deterministic layers (sorted,
// owners and modes as asked, times at the epoch) through the layers
// package; RUN goes to a StepRunner, which returns what the command
// changed as a layer.
//
// Every layer is cached under a key made of the layers below it (their
// diff IDs), the instruction after expansion and what it reads: the
// content of the files it copies, the stage's environment for RUN, the
// IDs of its secrets (never their values). Keys chain on content, not on
// earlier keys, so a step that runs again and writes the same bytes lets
// the steps after it hit.
//
// Progress goes where the rest of kiln's does: each layer step (and each
// ADD download) is an internal/step step of the context's sink, cached or
// built; the parser's warnings and unused build args go to the context's
// slog logger. The package prints nothing.
package dockerfile
