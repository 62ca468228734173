/**
 * The Log4Shell payload: the JVM runs {@code /bin/sh -c "echo pwned > CANARY"} through
 * {@code Runtime.exec} (on JDK 17 Linux that goes through jspawnhelper, as in a real exploit).
 *
 * <p>Usage: {@code SpawnShell CANARY [SLEEP_SECONDS]}. With SLEEP_SECONDS the JVM stays alive
 * that long after the shell finished (prints {@code slept} if nobody killed it), so a test can
 * watch the detector kill the JVM itself.
 */
public final class SpawnShell {
    private SpawnShell() {}

    public static void main(String[] args) throws InterruptedException {
        Scenario.start();
        Scenario.spawnShell("shell", "echo pwned > " + Scenario.quote(args[0]));
        if (args.length > 1) {
            Thread.sleep(Long.parseLong(args[1]) * 1000);
            System.out.println("slept");
        }
    }
}
