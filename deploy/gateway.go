package deploy

import "strings"

// DefaultGateway is faas-cli's default gateway URL.
const DefaultGateway = "http://127.0.0.1:8080"

// GatewayURL picks the gateway as faas-cli does: the --gateway flag if not
// the default, else the stack's provider.gateway if not the default, else
// $OPENFAAS_URL, else the default. In faas-cli's code the stack file wins
// over the environment variable, whatever its docs say.
func GatewayURL(flag, stackGateway, envURL string) string {
	url := DefaultGateway
	switch {
	case flag != "" && NormalizeURL(flag) != DefaultGateway:
		url = flag
	case stackGateway != "" && NormalizeURL(stackGateway) != DefaultGateway:
		url = stackGateway
	case envURL != "":
		url = envURL
	}
	return NormalizeURL(url)
}

// NormalizeURL lower-cases url, trims trailing slashes and adds http://
// when it has no scheme: the form faas-cli stores and looks up credentials
// under.
func NormalizeURL(url string) string {
	url = strings.TrimRight(strings.ToLower(strings.TrimSpace(url)), "/")
	if !strings.HasPrefix(url, "http") {
		url = "http://" + url
	}
	return url
}
