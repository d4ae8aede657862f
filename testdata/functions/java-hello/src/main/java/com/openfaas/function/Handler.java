package com.openfaas.function;

import com.openfaas.model.AbstractHandler;
import com.openfaas.model.IRequest;
import com.openfaas.model.IResponse;
import com.openfaas.model.Response;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import org.apache.commons.lang3.StringUtils;

public class Handler extends AbstractHandler {
    public IResponse Handle(IRequest req) {
        Response res = new Response();
        String greeting = "Hello, Java";
        res.setBody(greeting + "! body=" + StringUtils.reverse(StringUtils.reverse(req.getBody())) + " q=" + req.getQuery().get("name"));
        String echo = req.getHeader("X-echo");
        if (echo != null) {
            res.setHeader("X-Echo", StringUtils.upperCase(echo));
        }
        res.setHeader("X-Banner", banner());
        res.setContentType("text/plain; charset=utf-8");
        return res;
    }

    // banner reads src/main/resources/banner.txt from the class path.
    private static String banner() {
        try (InputStream in = Handler.class.getResourceAsStream("/banner.txt")) {
            return in == null ? "missing" : new String(in.readAllBytes(), StandardCharsets.UTF_8).trim();
        } catch (IOException e) {
            return e.toString();
        }
    }
}
