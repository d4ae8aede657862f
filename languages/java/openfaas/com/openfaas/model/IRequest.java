package com.openfaas.model;

import java.util.Map;

/** IRequest is the request a handler reads. */
public interface IRequest {
    String getBody();

    Map<String, String> getHeaders();

    String getHeader(String key);

    String getQueryRaw();

    Map<String, String> getQuery();

    String getPathRaw();

    Map<String, String> getPath();
}
