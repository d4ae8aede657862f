// Package gateway is kiln's local OpenFaaS gateway: it runs each deployed
// function on free loopback ports and serves, on loopback, the part of the
// gateway API that tools use: /function/<name>[/path] (proxied),
// /system/functions (list, deploy, update, delete), /system/function/<name>
// and /healthz.
//
// An update starts the new instance beside the old one and routes to it
// only once its /_/health answers 200; the old one then gets SIGTERM and
// drains, so callers see no failed request across a redeploy.
package gateway
