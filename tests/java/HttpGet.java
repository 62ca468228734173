/**
 * Ordinary egress: a plain {@code java.net.Socket} to the URL's host and port, then
 * {@code GET / HTTP/1.0}.
 *
 * <p>Usage: {@code HttpGet URL}, e.g. {@code http://127.0.0.1:18080/}. Prints {@code jvm-pid},
 * then {@code connect-ok} and {@code http-status}, or {@code connect-error} (see {@link Egress}).
 */
public final class HttpGet {
    private HttpGet() {}

    public static void main(String[] args) {
        Scenario.start();
        Egress.httpGet(args[0]);
    }
}
