import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Pattern;

/**
 * The attacker's web server, the {@code javaCodeBase} of the rogue references: serves the
 * compiled payload classes ({@code GET /LabShell.class}) from a directory, and the "second
 * stage" {@code GET /canary} that {@code LabCurl} downloads. Every request is an event.
 */
final class ClassServer {
    private ClassServer() {}

    private static final Pattern CLASS_FILE = Pattern.compile("/[A-Za-z0-9_$]+\\.class");

    static void start(int port, Path classes) throws IOException {
        String name = "class:" + port;
        HttpServer server = HttpServer.create(
                new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 50);
        server.createContext("/", exchange -> {
            try (exchange) {
                String path = exchange.getRequestURI().getPath();
                byte[] body = null;
                String type = "application/octet-stream";
                if (path.equals("/canary")) {
                    body = "pwned\n".getBytes(StandardCharsets.US_ASCII);
                    type = "text/plain";
                } else if (CLASS_FILE.matcher(path).matches()) {
                    Path file = classes.resolve(path.substring(1));
                    if (Files.isRegularFile(file)) {
                        body = Files.readAllBytes(file);
                        type = "application/java-vm";
                    }
                }
                int status = body == null ? 404 : 200;
                Events.emit(name, "get", path + " " + status
                        + (body == null ? "" : " " + body.length + "B"));
                reply(exchange, status, type, body == null ? new byte[0] : body);
            }
        });
        server.start();
        Events.ready(name, server.getAddress());
    }

    static void reply(HttpExchange exchange, int status, String type, byte[] body)
            throws IOException {
        exchange.getResponseHeaders().set("Content-Type", type);
        exchange.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
        if (body.length > 0) {
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
        }
    }
}
