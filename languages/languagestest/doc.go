// Package languagestest holds test doubles for the language packs: a
// Debian archive in memory, so that pack tests need neither a mirror nor
// the runtime bases.
package languagestest
