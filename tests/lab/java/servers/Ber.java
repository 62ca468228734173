import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Just enough ASN.1 BER (X.690) for LDAP (RFC 4511): reading one tag-length-value element,
 * splitting a constructed value into its elements, and writing elements back.
 */
final class Ber {
    private Ber() {}

    /** Refuse larger messages: the lab's clients send a few hundred bytes. */
    static final int MAX_LENGTH = 64 * 1024;

    static final int INTEGER = 0x02;
    static final int OCTET_STRING = 0x04;
    static final int ENUMERATED = 0x0a;
    static final int SEQUENCE = 0x30;
    static final int SET = 0x31;

    /** One element: its tag byte and the bytes of its value. */
    record Tlv(int tag, byte[] value) {
        String string() {
            return new String(value, StandardCharsets.UTF_8);
        }

        long integer() {
            long n = 0;
            for (byte b : value) {
                n = (n << 8) | (b & 0xff);
            }
            return n;
        }

        /** The elements inside a constructed value. */
        List<Tlv> children() throws IOException {
            List<Tlv> out = new ArrayList<>();
            int i = 0;
            while (i < value.length) {
                int tag = value[i++] & 0xff;
                int[] len = length(value, i);
                i = len[1];
                if (len[0] > value.length - i) {
                    throw new IOException("element longer than its parent");
                }
                byte[] inner = new byte[len[0]];
                System.arraycopy(value, i, inner, 0, len[0]);
                out.add(new Tlv(tag, inner));
                i += len[0];
            }
            return out;
        }
    }

    /** Reads one element from {@code in}; null at a clean EOF before its first byte. */
    static Tlv read(InputStream in) throws IOException {
        int tag = in.read();
        if (tag < 0) {
            return null;
        }
        int first = in.read();
        if (first < 0) {
            throw new EOFException("no length");
        }
        int length = first;
        if ((first & 0x80) != 0) {
            int count = first & 0x7f;
            if (count == 0 || count > 3) {
                throw new IOException("unsupported length form " + first);
            }
            length = 0;
            for (int k = 0; k < count; k++) {
                int b = in.read();
                if (b < 0) {
                    throw new EOFException("short length");
                }
                length = (length << 8) | b;
            }
        }
        if (length > MAX_LENGTH) {
            throw new IOException("message of " + length + " bytes refused");
        }
        byte[] value = new byte[length];
        new DataInputStream(in).readFully(value);
        return new Tlv(tag, value);
    }

    /** {length, index after the length octets} for the length starting at {@code i}. */
    private static int[] length(byte[] buf, int i) throws IOException {
        if (i >= buf.length) {
            throw new IOException("truncated length");
        }
        int first = buf[i++] & 0xff;
        if ((first & 0x80) == 0) {
            return new int[] {first, i};
        }
        int count = first & 0x7f;
        if (count == 0 || count > 3 || i + count > buf.length) {
            throw new IOException("bad length form");
        }
        int length = 0;
        for (int k = 0; k < count; k++) {
            length = (length << 8) | (buf[i++] & 0xff);
        }
        return new int[] {length, i};
    }

    static byte[] tlv(int tag, byte[]... parts) {
        ByteArrayOutputStream value = new ByteArrayOutputStream();
        for (byte[] part : parts) {
            value.writeBytes(part);
        }
        byte[] v = value.toByteArray();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(tag);
        if (v.length < 0x80) {
            out.write(v.length);
        } else if (v.length < 0x100) {
            out.write(0x81);
            out.write(v.length);
        } else {
            out.write(0x82);
            out.write(v.length >> 8);
            out.write(v.length & 0xff);
        }
        out.writeBytes(v);
        return out.toByteArray();
    }

    static byte[] string(String s) {
        return tlv(OCTET_STRING, s.getBytes(StandardCharsets.UTF_8));
    }

    static byte[] integer(int tag, long n) {
        if (n >= 0 && n < 0x80) {
            return tlv(tag, new byte[] {(byte) n});
        }
        ByteArrayOutputStream v = new ByteArrayOutputStream();
        boolean started = false;
        for (int shift = 24; shift >= 0; shift -= 8) {
            int b = (int) (n >> shift) & 0xff;
            if (!started && b == 0) {
                continue;
            }
            if (!started && (b & 0x80) != 0) {
                v.write(0);
            }
            started = true;
            v.write(b);
        }
        return tlv(tag, v.toByteArray());
    }
}
