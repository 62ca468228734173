import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * The victim: a small web service that logs what it receives the way countless services did
 * in December 2021 - the request line (query decoded, as "search q=..." style logging does) and
 * the request headers (User-Agent, X-Api-Version, Referer...) - through the genuine log4j-core
 * 2.14.1, whose message lookups include {@code ${jndi:...}} (log4j2.xml: a console appender with
 * a pattern layout, {@code LOG %m%n}).
 *
 * <p>Usage: {@code java [JNDI flags] -cp CLASSES:log4j-core-2.14.1.jar:log4j-api-2.14.1.jar
 * VulnerableApp [PORT] [--lifetime SECONDS]}. PORT 0 (the default 8080 otherwise) picks a free
 * port. The app answers every request with "ok" after logging it, so a client knows that the
 * lookups it triggered are over. It exits by itself after SECONDS (default 600).
 *
 * <p>On stdout: {@code NOTE jvm-pid N}, {@code NOTE listening 127.0.0.1:PORT}, one {@code LOG}
 * line per logged message (after the lookups), and log4j's own status lines, which say why a
 * JNDI lookup failed ({@code WARN Error looking up JNDI resource [...]}, then the exception).
 */
public final class VulnerableApp {
    private VulnerableApp() {}

    private static final Logger LOG = LogManager.getLogger(VulnerableApp.class);

    public static void main(String[] args) throws IOException {
        int port = 8080;
        long lifetimeSeconds = 600;
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--lifetime") && i + 1 < args.length) {
                lifetimeSeconds = Long.parseLong(args[++i]);
            } else {
                port = Integer.parseInt(args[i]);
            }
        }
        note("jvm-pid " + ProcessHandle.current().pid());
        HttpServer server = HttpServer.create(
                new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 16);
        server.createContext("/", VulnerableApp::handle);
        server.start();
        note("listening 127.0.0.1:" + server.getAddress().getPort());
        exitAfter(lifetimeSeconds);
    }

    private static void handle(HttpExchange exchange) throws IOException {
        try {
            URI uri = exchange.getRequestURI();
            String query = uri.getRawQuery() == null
                    ? ""
                    : "?" + URLDecoder.decode(uri.getRawQuery(), StandardCharsets.UTF_8);
            LOG.info("{} {}{} {}", exchange.getRequestMethod(), uri.getRawPath(), query,
                    exchange.getProtocol());
            Map<String, List<String>> headers = new TreeMap<>(exchange.getRequestHeaders());
            for (Map.Entry<String, List<String>> header : headers.entrySet()) {
                for (String value : header.getValue()) {
                    LOG.info("{}: {}", header.getKey(), value);
                }
            }
        } catch (RuntimeException e) {
            note("log-error " + e);
        }
        byte[] body = "ok\n".getBytes(StandardCharsets.US_ASCII);
        exchange.sendResponseHeaders(200, body.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(body);
        }
    }

    /** A line about the app itself, not a log record. */
    static void note(String line) {
        synchronized (System.out) {
            System.out.println("NOTE " + line);
            System.out.flush();
        }
    }

    private static void exitAfter(long seconds) {
        Thread timer = new Thread(() -> {
            try {
                Thread.sleep(seconds * 1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            note("lifetime over, exiting");
            System.exit(0);
        }, "lifetime");
        timer.setDaemon(false);
        timer.start();
    }
}
