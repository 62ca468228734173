import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;

/**
 * The attacker's {@code nc -lvnp 4444}: waits for reverse shells, and on each one types
 * {@code echo pwned > pwned; exit}, then reads what the shell prints until it hangs up (at most
 * 5 s). Each connection and its end are events.
 */
final class ReverseShellListener {
    private ReverseShellListener() {}

    static final String COMMANDS = "echo pwned > pwned; exit\n";

    static void start(int port) throws IOException {
        String name = "revshell:" + port;
        ServerSocket server = new ServerSocket(port, 50, InetAddress.getLoopbackAddress());
        Events.daemon(name, () -> {
            while (true) {
                try {
                    Socket socket = server.accept();
                    Events.emit(name, "accept", socket.getRemoteSocketAddress());
                    Events.daemon(name + "-conn", () -> drive(name, socket));
                } catch (IOException e) {
                    Events.emit(name, "accept-error", e);
                    Events.sleep(100);
                }
            }
        });
        Events.ready(name, server.getLocalSocketAddress());
    }

    private static void drive(String name, Socket socket) {
        long received = 0;
        try (socket) {
            socket.setSoTimeout(5000);
            OutputStream out = socket.getOutputStream();
            out.write(COMMANDS.getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = socket.getInputStream();
            byte[] buf = new byte[4096];
            int n;
            while ((n = in.read(buf)) >= 0) {
                received += n;
            }
            Events.emit(name, "closed", "shell hung up after " + received + "B");
        } catch (SocketTimeoutException e) {
            Events.emit(name, "closed", "timeout after " + received + "B");
        } catch (IOException e) {
            Events.emit(name, "closed", e);
        }
    }
}
