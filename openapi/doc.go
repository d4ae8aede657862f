// Package openapi documents a stack's functions with OpenAPI 3.0.3.
//
// A function carries a fragment (LoadFragment): an OpenAPI document whose
// paths are relative to the function, "/" being /function/<name>. Merge
// joins the fragments of a stack into one document, each function under
// /function/<name> with a tag of its own and its components renamed
// <name>.<component>, so that two functions' Item schemas do not clash.
// A function without a fragment gets one from its traffic: an Inferrer
// observes exchanges through the gateway and writes what it saw (methods,
// paths with their id segments templated, query keys, JSON schemas of the
// bodies, status codes), marked x-kiln-inferred. HTML renders a merged
// document as a page with a try-it form per operation that calls through
// the gateway.
//
// Documents are kin-openapi's (github.com/getkin/kin-openapi/openapi3);
// every document Merge returns has passed its validation.
package openapi
