import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A JVM that is already running when the detector starts: it prints {@code jvm-pid}, waits
 * for GO_FILE to exist (at most two minutes), then, given LOOKUP_URL, makes that JNDI lookup
 * (the Log4Shell callback, see {@link Egress#lookup}), then runs the Log4Shell payload
 * {@code /bin/sh -c "echo pwned > CANARY"}.
 *
 * <p>Usage: {@code WaitThenShell CANARY GO_FILE [LOOKUP_URL]}.
 */
public final class WaitThenShell {
    private WaitThenShell() {}

    public static void main(String[] args) throws InterruptedException {
        Scenario.start();
        Path go = Path.of(args[1]);
        for (int i = 0; i < 2400 && !Files.exists(go); i++) {
            Thread.sleep(50);
        }
        if (args.length > 2) {
            Egress.lookup(args[2]);
        }
        Scenario.spawnShell("shell", "echo pwned > " + Scenario.quote(args[0]));
    }
}
