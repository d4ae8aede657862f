// Package deploy hands functions to an OpenFaaS gateway the way faas-cli
// deploy does: the same gateway URL precedence, credentials from faas-cli's
// config.yml, the same FunctionDeployment JSON, PUT then POST on 404. It
// also renders the same functions as Kubernetes manifests (Deployment and
// Service) or as an openfaas.com/v1 Function for GitOps.
package deploy
