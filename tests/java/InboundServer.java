import com.sun.net.httpserver.HttpServer;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * An HTTP server for inbound inspection: answers every request with {@code ok} (the body, if
 * any, is read and dropped), over keep-alive connections, until a request for {@code /quit} or
 * 120 seconds.
 *
 * <p>Usage: {@code InboundServer PORT}. Prints {@code listening PORT}, {@code request PATH} for
 * each request, then {@code done}.
 */
public final class InboundServer {
    public static void main(String[] args) throws Exception {
        Scenario.start();
        int port = Integer.parseInt(args[0]);
        CountDownLatch quit = new CountDownLatch(1);
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 0);
        server.createContext("/", exchange -> {
            try (InputStream in = exchange.getRequestBody()) {
                in.readAllBytes();
            }
            String path = exchange.getRequestURI().getPath();
            System.out.println("request " + path);
            System.out.flush();
            byte[] body = "ok".getBytes();
            exchange.sendResponseHeaders(200, body.length);
            exchange.getResponseBody().write(body);
            exchange.close();
            if (path.equals("/quit")) {
                quit.countDown();
            }
        });
        server.start();
        System.out.println("listening " + port);
        System.out.flush();
        quit.await(120, TimeUnit.SECONDS);
        server.stop(0);
        System.out.println("done");
    }
}
