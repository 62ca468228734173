/**
 * A JVM whose policy allows it to run perl: {@code /usr/bin/perl -e 'open(F,">CANARY");print F "ok"'}.
 * Perl is an interpreter, so without the {@code [[exec.allow]] app = "AllowedChild"} rule it would
 * alert (and be killed in enforce mode).
 *
 * <p>Usage: {@code AllowedChild CANARY [MARKER_CANARY]}. With MARKER_CANARY the same JVM then runs
 * the marker shell, which the allow rule does not cover, so it must alert.
 */
public final class AllowedChild {
    private AllowedChild() {}

    public static void main(String[] args) {
        Scenario.start();
        String script = "open(F,\">" + args[0] + "\");print F \"ok\"";
        Scenario.run("perl", "/usr/bin/perl", "-e", script);
        if (args.length > 1) {
            Scenario.marker(args[1]);
        }
    }
}
