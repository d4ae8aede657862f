package dev.kiln.sample;

import com.sun.net.httpserver.HttpServer;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import org.apache.commons.lang3.StringUtils;

/** Main serves a greeting on 127.0.0.1, port $http_port (default 8082). */
public class Main {
    public static void main(String[] args) throws Exception {
        String port = System.getenv().getOrDefault("http_port", "8082");
        HttpServer server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), Integer.parseInt(port)), 0);
        server.createContext("/", exchange -> {
            byte[] out = ("maven app: " + StringUtils.capitalize("hello") + "\n").getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(200, out.length);
            try (OutputStream os = exchange.getResponseBody()) {
                os.write(out);
            }
        });
        server.start();
    }
}
