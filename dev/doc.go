// Package dev is the watch → rebuild → swap loop of `kiln dev`. Watch
// reports, per function, a change once its handler folder has been quiet
// for the debounce interval, ignoring .git, build output, editor swap files
// and paths the folder's .gitignore names; Loop rebuilds that function
// alone and deploys it, keeping the last good version live on failure.
package dev
