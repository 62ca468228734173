/**
 * Two steps in one JVM: a JNDI lookup, then a plain HTTP connect, the way an exploited server
 * keeps talking to the network after the lookup. With quarantine on, the detector must deny
 * the second step because of the first.
 *
 * <p>Usage: {@code Sequence LOOKUP_URL HTTP_URL}. Prints {@code jvm-pid}, the lookup's lines,
 * then the HTTP lines (see {@link Egress}).
 */
public final class Sequence {
    private Sequence() {}

    public static void main(String[] args) {
        Scenario.start();
        Egress.lookup(args[0]);
        Egress.httpGet(args[1]);
    }
}
