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

/**
 * The victim: a small web service that logs what it receives the way countless services did
 * in December 2021 - the request line (query decoded, as "search q=..." style logging does) and
 * the request headers (User-Agent, X-Api-Version, Referer...) - through {@link LogInterpolator},
 * a log4j 2.14-style logger whose message lookups include {@code ${jndi:...}}.
 *
 * <p>Usage: {@code java [JNDI flags] -cp CLASSES VulnerableApp [PORT] [--lifetime SECONDS]}.
 * PORT 0 (the default 8080 otherwise) picks a free port. The app answers every request with
 * "ok" after logging it, so a client knows that the lookups it triggered are over. It exits by
 * itself after SECONDS (default 600).
 *
 * <p>On stdout: {@code jvm-pid N}, {@code listening 127.0.0.1:PORT}, one {@code LOG} line per
 * logged message (after interpolation) and {@code NOTE} lines saying what each JNDI lookup
 * returned or why it failed.
 */
public final class VulnerableApp {
    private VulnerableApp() {}

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
            log(exchange.getRequestMethod() + " " + uri.getRawPath() + query + " "
                    + exchange.getProtocol());
            Map<String, List<String>> headers = new TreeMap<>(exchange.getRequestHeaders());
            for (Map.Entry<String, List<String>> header : headers.entrySet()) {
                for (String value : header.getValue()) {
                    log(header.getKey() + ": " + value);
                }
            }
        } catch (RuntimeException e) {
            note("log-error " + LogInterpolator.chain(e));
        }
        byte[] body = "ok\n".getBytes(StandardCharsets.US_ASCII);
        exchange.sendResponseHeaders(200, body.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(body);
        }
    }

    /** {@code logger.info(message)} with message lookups on: the vulnerable line. */
    static void log(String message) {
        String line = LogInterpolator.interpolate(message);
        synchronized (System.out) {
            System.out.println("LOG " + line);
            System.out.flush();
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
