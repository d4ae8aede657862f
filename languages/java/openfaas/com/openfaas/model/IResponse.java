package com.openfaas.model;

import java.util.Map;

/** IResponse is the answer a handler fills in. */
public interface IResponse {
    String getBody();

    void setBody(String body);

    String getHeader(String key);

    /** setHeader sets a header; a null value removes it. */
    void setHeader(String key, String value);

    Map<String, String> getHeaders();

    void setContentType(String contentType);

    String getContentType();

    void setStatusCode(int code);

    int getStatusCode();
}
