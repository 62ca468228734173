import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Name lookups through the C library's resolver (what {@code InetAddress} does), which asks the
 * servers of {@code /etc/resolv.conf} as this JVM sees it, with steps in between.
 *
 * <p>Usage: {@code Resolve STEP...}, each step one of {@code name:NAME} (look the name up:
 * prints {@code resolve-ok NAME} or {@code resolve-error NAME}), {@code jndi:URL} (a JNDI
 * lookup, see {@link Egress}) or {@code wait:PATH} (wait up to 30 s for the file to exist:
 * prints {@code waited PATH} or {@code wait-timeout PATH}). Prints {@code jvm-pid} first.
 */
public final class Resolve {
    private Resolve() {}

    public static void main(String[] args) throws InterruptedException {
        // A failed lookup must be asked again, not answered from the JVM's negative cache.
        java.security.Security.setProperty("networkaddress.cache.negative.ttl", "0");
        java.security.Security.setProperty("networkaddress.cache.ttl", "0");
        Scenario.start();
        for (String step : args) {
            if (step.startsWith("name:")) {
                String name = step.substring("name:".length());
                try {
                    InetAddress.getAllByName(name);
                    System.out.println("resolve-ok " + name);
                } catch (UnknownHostException e) {
                    System.out.println("resolve-error " + name);
                }
            } else if (step.startsWith("jndi:")) {
                Egress.lookup(step.substring("jndi:".length()));
            } else if (step.startsWith("wait:")) {
                Path path = Path.of(step.substring("wait:".length()));
                long deadline = System.nanoTime() + 30_000_000_000L;
                while (!Files.exists(path) && System.nanoTime() < deadline) {
                    Thread.sleep(20);
                }
                System.out.println((Files.exists(path) ? "waited " : "wait-timeout ") + path);
            } else {
                System.out.println("unknown-step " + step);
            }
            System.out.flush();
        }
    }
}
