/**
 * A shell started by a shell started by the JVM: the detector must still attribute the inner
 * shell to this JVM (its direct parent is the outer shell, not the JVM).
 *
 * <p>Usage: {@code Grandchild CANARY}. Prints {@code shell-output outer-pid N} and
 * {@code shell-output inner-pid M}; the trailing {@code echo outer-done} stops the outer
 * {@code sh} from exec'ing the inner one in place, so M is a real forked grandchild.
 */
public final class Grandchild {
    private Grandchild() {}

    public static void main(String[] args) {
        Scenario.start();
        String inner = "echo inner-pid $$; echo pwned > \"" + args[0] + "\"";
        Scenario.spawnShell("shell", "echo outer-pid $$; sh -c '" + inner + "'; echo outer-done");
    }
}
