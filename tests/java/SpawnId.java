/**
 * A benign child: {@code new ProcessBuilder("/usr/bin/id").start()}. {@code id} is not a shell,
 * interpreter or downloader, so it must not alert.
 *
 * <p>Usage: {@code SpawnId [MARKER_CANARY]}. With MARKER_CANARY the same JVM then runs the marker
 * shell, which must alert: that proves this JVM was being watched while {@code id} ran.
 */
public final class SpawnId {
    private SpawnId() {}

    public static void main(String[] args) {
        Scenario.start();
        Scenario.run("id", "/usr/bin/id");
        if (args.length > 0) {
            Scenario.marker(args[0]);
        }
    }
}
