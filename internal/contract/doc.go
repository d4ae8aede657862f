// Package contract is the image contract in one place: where a kiln image
// keeps the function and the watchdog, the user the function runs as, the
// ports, and the settings the watchdog reads from the environment. The
// runtime bases, the language packs, the builder, deploy and the local
// gateway take these facts from here, so that they cannot drift apart.
//
// The package imports nothing but the standard library, so that the
// watchdog may use it too. The watchdog's own defaults are not taken from
// here, though: any change to its sources changes its binary's build ID,
// and with it the watchdog layer of every image; a test keeps them equal.
package contract
