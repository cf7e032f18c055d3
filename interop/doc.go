// Package interop holds no code of its own: its tests run the hub of
// github.com/ssehub/sse against real Server-Sent Events clients (headless
// Chromium's EventSource, npm eventsource, @microsoft/fetch-event-source
// and three Go client libraries) and check that each of them resumes,
// resets and stays quiet the way the hub promises. See RESULTS.md for the
// last recorded run and interop_test.go for the scenarios. The tests of
// sse.js, the page-side module the hub's package serves, run it in Chromium
// too (module_*_test.go).
package interop
