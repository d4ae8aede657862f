// Package dev is the watch → rebuild → swap loop of `kiln dev`. Watch
// reports, per function, a change once what its build reads has been
// quiet for the debounce interval: its handler folder, and the files and
// folders outside it that its last build read (a Go replace, npm file:,
// pip -r), ignoring .git, build output, installed packages, editor swap
// files and paths a folder's .gitignore names. Loop rebuilds that
// function alone and deploys it, keeping the last good version live on
// failure.
package dev
