import java.net.InetAddress;
import java.net.UnknownHostException;

/**
 * A service in a container: it looks up ordinary names through the C library's resolver, which
 * asks the name servers of {@code /etc/resolv.conf} as this JVM's mount namespace has it (the
 * lab bind-mounts one naming the container's own resolver). Prints {@code resolved NAME} or
 * {@code unresolved NAME} (the lab's resolver answers NXDOMAIN) per name; exits 0.
 *
 * <p>Usage: {@code LabResolverClient NAME...}.
 */
public final class LabResolverClient {
    private LabResolverClient() {}

    public static void main(String[] args) {
        // Every name is asked of the resolver, not answered from the JVM's caches.
        java.security.Security.setProperty("networkaddress.cache.negative.ttl", "0");
        for (String name : args) {
            try {
                InetAddress.getAllByName(name);
                System.out.println("resolved " + name);
            } catch (UnknownHostException e) {
                System.out.println("unresolved " + name);
            }
        }
    }
}
