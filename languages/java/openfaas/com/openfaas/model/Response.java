package com.openfaas.model;

import java.util.HashMap;
import java.util.Map;

/** Response is kiln's IResponse: status 200, empty body and content type, no headers. */
public class Response implements IResponse {
    private int statusCode = 200;
    private String body = "";
    private String contentType = "";
    private final Map<String, String> headers = new HashMap<>();

    public String getBody() {
        return body;
    }

    public void setBody(String body) {
        this.body = body;
    }

    public String getHeader(String key) {
        return headers.get(key);
    }

    public void setHeader(String key, String value) {
        if (value == null) {
            headers.remove(key);
        } else {
            headers.put(key, value);
        }
    }

    public Map<String, String> getHeaders() {
        return headers;
    }

    public void setContentType(String contentType) {
        this.contentType = contentType;
    }

    public String getContentType() {
        return contentType;
    }

    public void setStatusCode(int code) {
        this.statusCode = code;
    }

    public int getStatusCode() {
        return statusCode;
    }
}
