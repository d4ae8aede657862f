package com.openfaas.entrypoint;

import com.openfaas.model.AbstractHandler;
import com.openfaas.model.IHandler;
import com.openfaas.model.IResponse;
import com.openfaas.model.Request;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.concurrent.Executors;

/**
 * App serves com.openfaas.function.Handler over HTTP on 127.0.0.1, on the
 * port in env http_port (default 8082), behind the watchdog.
 */
public class App {
    static final String HANDLER = "com.openfaas.function.Handler";

    public static void main(String[] args) throws Exception {
        IHandler handler = loadHandler();
        int port = 8082;
        String env = System.getenv("http_port");
        if (env != null && !env.isEmpty()) {
            port = Integer.parseInt(env);
        }
        HttpServer server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 0);
        server.createContext("/", exchange -> serve(handler, exchange));
        server.setExecutor(Executors.newCachedThreadPool());
        server.start();
    }

    // A provider registered in META-INF/services wins, as in the OpenFaaS
    // entrypoint; without one the class is loaded by its fixed name.
    static IHandler loadHandler() throws ReflectiveOperationException {
        Iterator<AbstractHandler> it = ServiceLoader.load(AbstractHandler.class).iterator();
        if (it.hasNext()) {
            return it.next();
        }
        Class<?> c = Class.forName(HANDLER);
        if (!AbstractHandler.class.isAssignableFrom(c)) {
            throw new IllegalStateException(HANDLER + " does not extend " + AbstractHandler.class.getName());
        }
        return (IHandler) c.getDeclaredConstructor().newInstance();
    }

    static void serve(IHandler handler, HttpExchange exchange) throws IOException {
        try {
            String method = exchange.getRequestMethod();
            // The OpenFaaS entrypoint reads the body for POST only; PUT and
            // PATCH carry bodies too, and dropping them would surprise.
            String body = "";
            if (method.equalsIgnoreCase("POST") || method.equalsIgnoreCase("PUT") || method.equalsIgnoreCase("PATCH")) {
                try (InputStream in = exchange.getRequestBody()) {
                    body = new String(in.readAllBytes(), StandardCharsets.UTF_8);
                }
            }
            Map<String, String> headers = new HashMap<>();
            for (Map.Entry<String, List<String>> h : exchange.getRequestHeaders().entrySet()) {
                if (!h.getValue().isEmpty()) {
                    headers.put(h.getKey(), h.getValue().get(0));
                }
            }
            Request req = new Request(body, headers, exchange.getRequestURI().getRawQuery(), exchange.getRequestURI().getPath());

            IResponse res;
            try {
                res = handler.Handle(req);
            } catch (RuntimeException e) {
                e.printStackTrace();
                send(exchange, 500, "", Map.of(), "handler failed: " + e);
                return;
            }
            send(exchange, res.getStatusCode(), res.getContentType(), res.getHeaders(), res.getBody());
        } finally {
            exchange.close();
        }
    }

    static void send(HttpExchange exchange, int status, String contentType, Map<String, String> headers, String body) throws IOException {
        if (contentType != null && !contentType.isEmpty()) {
            exchange.getResponseHeaders().set("Content-Type", contentType);
        }
        for (Map.Entry<String, String> h : headers.entrySet()) {
            exchange.getResponseHeaders().set(h.getKey(), h.getValue());
        }
        byte[] out = body == null ? new byte[0] : body.getBytes(StandardCharsets.UTF_8);
        // -1 says there is no body; 0 would mean a chunked one.
        exchange.sendResponseHeaders(status, out.length == 0 ? -1 : out.length);
        if (out.length > 0) {
            try (OutputStream os = exchange.getResponseBody()) {
                os.write(out);
            }
        }
    }
}
