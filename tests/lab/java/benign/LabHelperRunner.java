import java.io.IOException;
import java.util.concurrent.TimeUnit;

/**
 * Benign: a JVM whose job includes running a helper through the shell -
 * {@code /bin/sh -c 'echo helper-ok > helper-out'} - which the lab policy allows for this
 * application only ({@code [[exec.allow]] app = "LabHelperRunner"}).
 *
 * <p>It waits half a second first: a per-application rule is installed by the detector a
 * moment after it sees the JVM start (docs/policy.md, "When rules take effect").
 * Exits with the helper's exit status.
 */
public final class LabHelperRunner {
    private LabHelperRunner() {}

    public static void main(String[] args) throws IOException, InterruptedException {
        Thread.sleep(500);
        Process helper = new ProcessBuilder("/bin/sh", "-c", "echo helper-ok > helper-out")
                .inheritIO()
                .start();
        if (!helper.waitFor(10, TimeUnit.SECONDS)) {
            helper.destroyForcibly();
            System.out.println("helper timed out");
            System.exit(1);
        }
        System.out.println("helper-exit " + helper.exitValue());
        System.exit(helper.exitValue());
    }
}
