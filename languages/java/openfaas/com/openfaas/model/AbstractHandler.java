package com.openfaas.model;

/** AbstractHandler is what com.openfaas.function.Handler extends. */
public abstract class AbstractHandler implements IHandler {
    public abstract IResponse Handle(IRequest request);
}
