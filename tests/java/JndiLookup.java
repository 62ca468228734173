/**
 * The Log4Shell lookup itself: {@code new InitialContext(env).lookup(URL)} with the JDK's JNDI
 * providers, e.g. {@code ldap://127.0.0.1:1389/x}, {@code rmi://127.0.0.1:1099/x} or
 * {@code dns://127.0.0.1:5353/pwned.example.com}.
 *
 * <p>Usage: {@code JndiLookup URL}. Prints {@code jvm-pid}, then {@code lookup-ok} or
 * {@code lookup-error} and {@code lookup-ms} (see {@link Egress}).
 */
public final class JndiLookup {
    private JndiLookup() {}

    public static void main(String[] args) {
        Scenario.start();
        Egress.lookup(args[0]);
    }
}
