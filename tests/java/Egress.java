import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.Hashtable;
import javax.naming.Context;
import javax.naming.InitialContext;
import javax.naming.NamingException;

/**
 * The network steps of the egress scenarios, in the {@link Scenario} line protocol:
 *
 * <pre>
 * lookup-ok CLASS              the JNDI lookup returned an object of this class
 * lookup-error CHAIN           it threw; CHAIN is "class: message" for the exception and each
 *                              cause, joined by "; caused by " (JNDI keeps the socket error,
 *                              e.g. "java.net.SocketException: Operation not permitted", as
 *                              the root cause of a NamingException)
 * lookup-ms N                  how long the lookup took
 * connect-ok ADDRESS           the plain TCP connect succeeded
 * connect-error CHAIN          it failed
 * http-status LINE             the first line of the HTTP answer ("none" if the server closed)
 * http-error CHAIN             sending the request or reading the answer failed
 * </pre>
 *
 * <p>Every step gives up after {@link #TIMEOUT_MS}, so a black-holed server costs seconds, not
 * minutes. Nothing here throws: the assertions belong to the test.
 */
final class Egress {
    private Egress() {}

    /** Connect and read timeout of every step. */
    static final int TIMEOUT_MS = 2000;

    /**
     * {@code new InitialContext(env).lookup(url)} through the JDK's own JNDI providers
     * ({@code ldap://}, {@code rmi://}, {@code dns://}), exactly what a Log4Shell lookup does.
     */
    static void lookup(String url) {
        rmiTimeouts();
        Hashtable<String, Object> env = new Hashtable<>();
        String timeout = Integer.toString(TIMEOUT_MS);
        env.put("com.sun.jndi.ldap.connect.timeout", timeout);
        env.put("com.sun.jndi.ldap.read.timeout", timeout);
        // One try of TIMEOUT_MS: the default (1 s, doubled over 4 retries) would take 15 s
        // against a server that never answers.
        env.put("com.sun.jndi.dns.timeout.initial", timeout);
        env.put("com.sun.jndi.dns.timeout.retries", "1");
        long start = System.nanoTime();
        Context ctx = null;
        try {
            ctx = new InitialContext(env);
            Object found = ctx.lookup(url);
            println("lookup-ok " + (found == null ? "null" : found.getClass().getName()));
        } catch (NamingException | RuntimeException e) {
            println("lookup-error " + chain(e));
        } finally {
            close(ctx);
        }
        println("lookup-ms " + (System.nanoTime() - start) / 1_000_000);
    }

    /**
     * A plain {@link Socket} to the host and port of {@code url}, then {@code GET /}: ordinary
     * traffic that no LDAP, RMI or DNS heuristic should recognise.
     */
    static void httpGet(String url) {
        URI uri = URI.create(url);
        int port = uri.getPort() < 0 ? 80 : uri.getPort();
        try (Socket socket = new Socket()) {
            try {
                // getHost keeps the brackets of an IPv6 literal; getByName accepts them.
                socket.connect(new InetSocketAddress(uri.getHost(), port), TIMEOUT_MS);
            } catch (IOException | RuntimeException e) {
                println("connect-error " + chain(e));
                return;
            }
            println("connect-ok " + socket.getRemoteSocketAddress());
            try {
                socket.setSoTimeout(TIMEOUT_MS);
                OutputStream out = socket.getOutputStream();
                out.write("GET / HTTP/1.0\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
                out.flush();
                BufferedReader in = new BufferedReader(
                        new InputStreamReader(socket.getInputStream(), StandardCharsets.US_ASCII));
                String status = in.readLine();
                println("http-status " + (status == null ? "none" : status));
            } catch (IOException e) {
                println("http-error " + chain(e));
            }
        } catch (IOException e) {
            println("http-error closing: " + chain(e));
        }
    }

    /**
     * RMI reads these once, when its transport classes load, so they are set before the first
     * lookup. The handshake timeout bounds the wait for the server's JRMP acknowledgement,
     * the response timeout the wait for a call's answer.
     */
    private static void rmiTimeouts() {
        String timeout = Integer.toString(TIMEOUT_MS);
        System.setProperty("sun.rmi.transport.connectionTimeout", timeout);
        System.setProperty("sun.rmi.transport.tcp.responseTimeout", timeout);
        System.setProperty("sun.rmi.transport.tcp.handshakeTimeout", timeout);
    }

    /** "class: message; caused by class: message; ..." (a NamingException's cause is its root cause). */
    static String chain(Throwable e) {
        StringBuilder text = new StringBuilder();
        int depth = 0;
        for (Throwable t = e; t != null && depth < 10; t = t.getCause(), depth++) {
            if (depth > 0) {
                text.append("; caused by ");
            }
            text.append(t.getClass().getName()).append(": ").append(t.getMessage());
            if (t.getCause() == t) {
                break;
            }
        }
        return text.toString().replace('\n', ' ');
    }

    private static void close(Context ctx) {
        if (ctx == null) {
            return;
        }
        try {
            ctx.close();
        } catch (NamingException e) {
            println("lookup-close-error " + chain(e));
        }
    }

    private static void println(String line) {
        System.out.println(line);
        System.out.flush();
    }
}
