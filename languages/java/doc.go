// Package java builds Java functions: the OpenFaaS java11/java17 handler
// layout (com.openfaas.function.Handler extending
// com.openfaas.model.AbstractHandler), served by a model and entrypoint kiln
// supplies, and plain applications with a main class (lang "java").
//
// Nothing runs inside a container and Gradle never runs: dependencies come
// from the user's own Maven (their settings.xml applies), read from
// pom.xml or from the plain coordinates of build.gradle, and are cached by
// the build files' content, the JDK and the platform. Sources are compiled
// with the host's javac against that cached class path, so an edit costs one
// javac run and one small layer. The runtime is cut with jdeps and jlink to
// the modules the function uses and cached by JDK build and module set.
// For another platform, jlink links the jmods of Debian's JDK for that
// architecture (fetched and verified through the languages.Debian that
// WithDebian gives the pack), so an amd64 machine builds arm64 images.
//
// Plan only reads files. The stages (the model jar, the dependencies,
// javac, jdeps, another platform's JDK) run when a step's key first needs
// them, once per build, each cached on disk by its inputs, so the
// builder's report shows their time in the steps that waited for them.
//
// Layers, bottom first: runtime (/opt/java), release dependencies,
// snapshot dependencies, the model and entrypoint jar, resources, classes.
package java
