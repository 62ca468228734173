import com.sun.net.httpserver.HttpServer;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.URL;
import java.net.URLConnection;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * The first and third stages of a Log4Shell attack, without the vulnerable logger: serves HTTP
 * on 127.0.0.1:PORT until it gets a request (the probe), then downloads CLASS_URL (the class
 * bytes), then lingers a moment so the detector can respond to the JVM.
 *
 * <p>Usage: {@code Inbound PORT CLASS_URL}. Prints {@code listening}, {@code probed},
 * {@code fetch-bytes N} or {@code fetch-error ...}, then {@code done}.
 */
public final class Inbound {
    public static void main(String[] args) throws Exception {
        Scenario.start();
        int port = Integer.parseInt(args[0]);
        CountDownLatch probed = new CountDownLatch(1);
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 0);
        server.createContext("/", exchange -> {
            byte[] body = "ok".getBytes();
            exchange.sendResponseHeaders(200, body.length);
            exchange.getResponseBody().write(body);
            exchange.close();
            probed.countDown();
        });
        server.start();
        System.out.println("listening " + port);
        System.out.flush();
        System.out.println(probed.await(10, TimeUnit.SECONDS) ? "probed" : "not-probed");
        try {
            URLConnection conn = new URL(args[1]).openConnection();
            conn.setConnectTimeout(3000);
            conn.setReadTimeout(3000);
            try (InputStream in = conn.getInputStream()) {
                System.out.println("fetch-bytes " + in.readAllBytes().length);
            }
        } catch (Exception e) {
            System.out.println("fetch-error " + e);
        }
        System.out.flush();
        Thread.sleep(3000);
        server.stop(0);
        System.out.println("done");
    }
}
