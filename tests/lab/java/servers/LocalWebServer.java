import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;

/** An ordinary local web service for the benign HTTP-client scenario. Requests are events. */
final class LocalWebServer {
    private LocalWebServer() {}

    static void start(int port) throws IOException {
        String name = "web:" + port;
        HttpServer server = HttpServer.create(
                new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 50);
        server.createContext("/", exchange -> {
            try (exchange) {
                Events.emit(name, "get", exchange.getRequestURI().getPath());
                ClassServer.reply(exchange, 200, "text/plain",
                        "hello from the lab's web server\n".getBytes(StandardCharsets.US_ASCII));
            }
        });
        server.start();
        Events.ready(name, server.getAddress());
    }
}
