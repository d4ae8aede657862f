// Package progress renders the workflow's events (project's and dev's)
// as the lines a person reads: on a terminal, in CI logs, in a build Job's
// log. Results go to stdout, the rest to stderr; progress lines show only
// when asked for, warnings always. JSON lines for programs come from
// project.JSONLines.
package progress
