//go:build race

package coordinator

// raceEnabled shrinks the network of the tests under the race detector,
// which slows the engine's Go loops down tenfold; the concurrency under test
// is the same.
const raceEnabled = true
