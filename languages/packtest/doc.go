// Package packtest checks language packs against golden image digests.
//
// A pack's golden test builds a pinned sample function at a fixed epoch on
// a fixed test base and watchdog, twice, with two fresh caches: the two
// digests must agree. It then compares the image's digest, its config's
// and every layer's, by step name, with a golden file that records the
// host toolchain it was made with (the Go compiler, the JDK, Python, npm).
// A refactor that changes one byte of an image fails the test; a machine
// with another toolchain skips the comparison and says which versions
// differ. Run the test with -update to rewrite the golden file.
package packtest
