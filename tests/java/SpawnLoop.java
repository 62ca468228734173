/**
 * A JVM that keeps starting harmless programs ({@code /bin/true}) — a stream of lineage events
 * (fork, exec, exit) for as long as a test needs one.
 *
 * <p>Usage: {@code SpawnLoop MILLISECONDS}. Prints {@code jvm-pid}, then {@code spawned N}
 * and {@code failed N} (children that did not exit 0) when the time is up.
 */
public final class SpawnLoop {
    private SpawnLoop() {}

    public static void main(String[] args) throws Exception {
        Scenario.start();
        long end = System.nanoTime() + Long.parseLong(args[0]) * 1_000_000L;
        int spawned = 0;
        int failed = 0;
        while (System.nanoTime() < end) {
            Process p = new ProcessBuilder("/bin/true").start();
            if (p.waitFor() != 0) {
                failed++;
            }
            spawned++;
        }
        System.out.println("spawned " + spawned);
        System.out.println("failed " + failed);
    }
}
