package com.openfaas.model;

/** IHandler answers one request. */
public interface IHandler {
    IResponse Handle(IRequest request);
}
