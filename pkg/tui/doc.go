// Package tui is the live dashboard behind `arkstate top`: a bubbletea
// program that polls a running job's /status (see package monitor) and,
// optionally, lists the checkpoints of its store.
//
// Rendering is a pure function of what was fetched (Render), so it is tested
// without a terminal; the program around it only schedules the polls and
// handles keys.
package tui
