// Package dev watches functions' handler folders for `kiln dev`: it
// reports, per function, a change once its folder has been quiet for the
// debounce interval, ignoring .git, build output, editor swap files and
// paths the folder's .gitignore names.
package dev
