package com.openfaas.model;

import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;

/** Request is kiln's IRequest. */
public class Request implements IRequest {
    private final String body;
    private final Map<String, String> headers;
    private final String queryRaw;
    private final Map<String, String> query;
    private final String pathRaw;
    private final Map<String, String> path;

    public Request(String body, Map<String, String> headers) {
        this(body, headers, null, null);
    }

    public Request(String body, Map<String, String> headers, String queryRaw, String path) {
        this.body = body;
        this.headers = headers == null ? new HashMap<>() : headers;
        this.queryRaw = queryRaw;
        this.query = parseQuery(queryRaw);
        this.pathRaw = path;
        this.path = parsePath(path);
    }

    public String getBody() {
        return body;
    }

    public Map<String, String> getHeaders() {
        return headers;
    }

    public String getHeader(String key) {
        return headers.get(key);
    }

    public String getQueryRaw() {
        return queryRaw;
    }

    public Map<String, String> getQuery() {
        return query;
    }

    public String getPathRaw() {
        return pathRaw;
    }

    public Map<String, String> getPath() {
        return path;
    }

    // a=1&b=x%20y gives {a: 1, b: "x y"}; a key without "=" maps to "".
    private static Map<String, String> parseQuery(String raw) {
        Map<String, String> out = new HashMap<>();
        if (raw == null || raw.isEmpty()) {
            return out;
        }
        for (String pair : raw.split("&")) {
            if (pair.isEmpty()) {
                continue;
            }
            int eq = pair.indexOf('=');
            String k = eq < 0 ? pair : pair.substring(0, eq);
            String v = eq < 0 ? "" : pair.substring(eq + 1);
            out.put(URLDecoder.decode(k, StandardCharsets.UTF_8), URLDecoder.decode(v, StandardCharsets.UTF_8));
        }
        return out;
    }

    // /a/1/b/2 gives {a: 1, b: 2}; a trailing key without a value is left out.
    private static Map<String, String> parsePath(String raw) {
        if (raw == null || raw.isEmpty()) {
            return Collections.emptyMap();
        }
        Map<String, String> out = new HashMap<>();
        String[] parts = raw.replaceAll("^/+", "").split("/");
        for (int i = 0; i + 1 < parts.length; i += 2) {
            out.put(parts[i], parts[i + 1]);
        }
        return out;
    }
}
