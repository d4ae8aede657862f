// Package gateway is kiln's local OpenFaaS gateway: it runs each deployed
// function on free loopback ports and serves, on loopback, the part of the
// gateway API that tools use: /function/<name>[.<namespace>][/path]
// (proxied), /async-function/<name>[/path] (202, then the answer to
// X-Callback-Url), /system/functions (list, deploy, update, delete),
// /system/function/<name>, /system/logs (the last 1000 lines of each
// function, and follow), /system/secrets, /system/namespaces, /system/info
// and /healthz.
//
// An update starts the new instance beside the old one and routes to it
// only once its /_/health answers 200; the old one then gets SIGTERM and
// drains, so callers see no failed request across a redeploy. An instance
// that exits once it was healthy is started again after a back-off, and
// answers 503 meanwhile.
package gateway
