import java.io.IOException;
import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.URL;

/**
 * Benign: a JVM that calls a local web service, {@code GET http://127.0.0.1:8280/}, as any
 * service calling a sidecar does. Its policy allows it that destination.
 *
 * <p>Usage: {@code LabHttpClient [URL]}. Prints {@code status N} and exits 0 on a 200.
 */
public final class LabHttpClient {
    private LabHttpClient() {}

    public static void main(String[] args) throws IOException {
        URL url = new URL(args.length > 0 ? args[0] : "http://127.0.0.1:8280/");
        HttpURLConnection connection = (HttpURLConnection) url.openConnection();
        connection.setConnectTimeout(3000);
        connection.setReadTimeout(3000);
        int status = connection.getResponseCode();
        try (InputStream body = connection.getInputStream()) {
            body.readAllBytes();
        }
        System.out.println("status " + status);
        System.exit(status == 200 ? 0 : 1);
    }
}
