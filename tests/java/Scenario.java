import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;

/**
 * Shared plumbing for the scenario programs the integration tests run inside a JVM.
 *
 * <p>Every program speaks the same line protocol on stdout, which the Rust harness parses
 * ({@code ProgramRun::value} in {@code tests/src/program.rs}):
 *
 * <pre>
 * jvm-pid N              first line: this JVM's pid, so the test can match alerts' jvm.pid
 * LABEL-pid N            pid of a child this JVM started (after exec it is the child program's pid)
 * LABEL-output TEXT      one line the child wrote on its stdout or stderr
 * LABEL-exit N           the child's exit code; 128 + signal when it was killed (137 = SIGKILL)
 * LABEL-error TEXT       starting or waiting for the child threw; the program still exits 0
 * </pre>
 *
 * <p>Programs exit 0 even when the detector kills their children: the assertions belong to the
 * test, which needs the output to make them.
 */
final class Scenario {
    private Scenario() {}

    /** Prints {@code jvm-pid}; call first in every {@code main}. */
    static void start() {
        System.out.println("jvm-pid " + ProcessHandle.current().pid());
        System.out.flush();
    }

    /** Starts {@code argv} with {@link ProcessBuilder} and reports it under {@code label}. */
    static void run(String label, String... argv) {
        try {
            report(label, new ProcessBuilder(argv).redirectErrorStream(true).start());
        } catch (IOException e) {
            error(label, e);
        }
    }

    /**
     * Prints the child's pid, relays its output, waits for it and prints its exit code.
     * The child's stderr is not drained here: callers pass merged streams or children that
     * write little enough to fit in the pipe.
     */
    static void report(String label, Process child) {
        System.out.println(label + "-pid " + child.pid());
        System.out.flush();
        try (BufferedReader out = new BufferedReader(
                new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = out.readLine()) != null) {
                System.out.println(label + "-output " + line);
            }
        } catch (IOException e) {
            // A killed child can leave the pipe in any state; its exit code below is what counts.
            System.out.println(label + "-output-error " + e);
        }
        try {
            System.out.println(label + "-exit " + child.waitFor());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            error(label, e);
        }
        System.out.flush();
    }

    /**
     * The marker: a shell spawned by this JVM exactly as {@link SpawnShell} does it, run after a
     * scenario that must not alert, so "no alert" is proven against a detector that was watching.
     */
    static void marker(String canary) {
        spawnShell("marker", "echo marker > " + quote(canary));
    }

    /** {@code Runtime.exec("/bin/sh", "-c", script)} — the classic Log4Shell payload shape. */
    static void spawnShell(String label, String script) {
        try {
            report(label, Runtime.getRuntime().exec(new String[] {"/bin/sh", "-c", script}));
        } catch (IOException e) {
            error(label, e);
        }
    }

    /** Single-quotes {@code path} for {@code sh}; the tests never use paths containing a quote. */
    static String quote(String path) {
        if (path.indexOf('\'') >= 0) {
            throw new IllegalArgumentException("path contains a single quote: " + path);
        }
        return "'" + path + "'";
    }

    static void error(String label, Exception e) {
        System.out.println(label + "-error " + e);
        System.out.flush();
    }
}
