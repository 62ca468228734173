import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * The JVM drops an executable into a world-writable directory and runs it, the way a second-stage
 * payload arrives.
 *
 * <p>Usage: {@code TmpPayload script|elf PAYLOAD CANARY}.
 * <ul>
 *   <li>{@code script}: writes {@code #!/bin/sh\necho pwned > CANARY} to PAYLOAD and executes it.
 *   <li>{@code elf}: copies {@code /usr/bin/touch} to PAYLOAD and executes {@code PAYLOAD CANARY}.
 * </ul>
 * PAYLOAD is deleted afterwards. Prints {@code payload-pid}, {@code payload-exit} as usual.
 */
public final class TmpPayload {
    private TmpPayload() {}

    public static void main(String[] args) throws IOException {
        Scenario.start();
        String kind = args[0];
        Path payload = Path.of(args[1]);
        String canary = args[2];
        try {
            switch (kind) {
                case "script":
                    String script = "#!/bin/sh\necho pwned > " + Scenario.quote(canary) + "\n";
                    Files.write(payload, script.getBytes(StandardCharsets.UTF_8));
                    makeExecutable(payload);
                    Scenario.run("payload", payload.toString());
                    break;
                case "elf":
                    Files.copy(Path.of("/usr/bin/touch"), payload, StandardCopyOption.REPLACE_EXISTING);
                    makeExecutable(payload);
                    Scenario.run("payload", payload.toString(), canary);
                    break;
                default:
                    throw new IllegalArgumentException("unknown payload kind " + kind);
            }
        } finally {
            Files.deleteIfExists(payload);
        }
    }

    private static void makeExecutable(Path path) throws IOException {
        Files.setPosixFilePermissions(path, PosixFilePermissions.fromString("rwxr-xr-x"));
        System.out.println("payload-path " + path);
    }
}
