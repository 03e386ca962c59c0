// Package monitor owns what a running job tells the outside world: its
// Prometheus metrics, its health, and the JSON status that `arkstate top`
// polls, all served by one http.Handler.
//
// The monitor holds no counters of its own. Whoever runs a stream registers
// a function that reports the stream's Status; every scrape, health check and
// status request calls it, so the three views never disagree and nothing is
// counted twice. monitor imports nothing of arkstate's: the pipeline and the
// CLI report to it, not the other way round.
package monitor
