import java.util.Hashtable;
import java.util.Locale;
import javax.naming.Context;
import javax.naming.InitialContext;
import javax.naming.NamingException;

/**
 * The part of log4j 2.0-2.14.1 that made CVE-2021-44228 possible, reduced to what the lab
 * needs: message lookups.
 *
 * <p>Every message the application logs is scanned for {@code ${...}} (nested); the inside is
 * itself interpolated first, so {@code ${${lower:j}ndi:...}} becomes {@code ${jndi:...}}; then
 * the text before the first {@code :-} is the variable and the rest its default (log4j's
 * {@code StrSubstitutor} value delimiter); the variable's prefix (before the first {@code :},
 * matched case-insensitively, as log4j's {@code Interpolator} lower-cases it) picks the lookup:
 *
 * <ul>
 *   <li>{@code lower:X}, {@code upper:X} - X in lower or upper case;
 *   <li>{@code env:NAME}, {@code sys:NAME} - an environment variable, a system property;
 *   <li>{@code jndi:URL} - {@code new InitialContext().lookup(URL)}, the string form of the
 *       object found (log4j's {@code JndiLookup}).
 * </ul>
 *
 * <p>A variable no lookup resolves takes its default ({@code ${::-j}} is the variable ":" with
 * default "j"), or stays as written when it has none. A resolved value is interpolated again,
 * as log4j did (the recursion behind CVE-2021-45046), at most {@link #MAX_DEPTH} deep.
 */
final class LogInterpolator {
    private LogInterpolator() {}

    /** Nesting and recursion bound: a hostile message costs a bounded amount of work. */
    static final int MAX_DEPTH = 8;

    /** Connect and read timeout of the JNDI lookups, so a silent server costs seconds. */
    private static final String TIMEOUT_MS = "3000";

    /** {@code message} with every {@code ${...}} replaced by what its lookup returns. */
    static String interpolate(String message) {
        return interpolate(message, 0);
    }

    private static String interpolate(String text, int depth) {
        if (depth > MAX_DEPTH) {
            return text;
        }
        StringBuilder out = new StringBuilder();
        int i = 0;
        while (i < text.length()) {
            int start = text.indexOf("${", i);
            if (start < 0) {
                out.append(text, i, text.length());
                break;
            }
            int end = matchingBrace(text, start);
            if (end < 0) {
                out.append(text, i, text.length());
                break;
            }
            out.append(text, i, start);
            String expression = interpolate(text.substring(start + 2, end), depth + 1);
            out.append(resolve(expression, text.substring(start, end + 1), depth));
            i = end + 1;
        }
        return out.toString();
    }

    /** The index of the {@code }} closing the {@code ${} at {@code start}, or -1. */
    private static int matchingBrace(String text, int start) {
        int open = 0;
        for (int i = start; i < text.length(); i++) {
            if (text.startsWith("${", i)) {
                open++;
                i++;
            } else if (text.charAt(i) == '}') {
                open--;
                if (open == 0) {
                    return i;
                }
            }
        }
        return -1;
    }

    private static String resolve(String expression, String original, int depth) {
        String variable = expression;
        String fallback = null;
        int delimiter = expression.indexOf(":-");
        if (delimiter >= 0) {
            variable = expression.substring(0, delimiter);
            fallback = expression.substring(delimiter + 2);
        }
        String value = lookup(variable);
        if (value != null) {
            return interpolate(value, depth + 1);
        }
        return fallback != null ? fallback : original;
    }

    private static String lookup(String variable) {
        int colon = variable.indexOf(':');
        if (colon < 0) {
            return null;
        }
        String prefix = variable.substring(0, colon).toLowerCase(Locale.ROOT);
        String name = variable.substring(colon + 1);
        switch (prefix) {
            case "lower":
                return name.toLowerCase(Locale.ROOT);
            case "upper":
                return name.toUpperCase(Locale.ROOT);
            case "env":
                return System.getenv(name);
            case "sys":
                return System.getProperty(name);
            case "jndi":
                return jndi(name);
            default:
                return null;
        }
    }

    /**
     * log4j's {@code JndiLookup}: {@code new InitialContext().lookup(name)} through the JDK's
     * own providers ({@code ldap://}, {@code rmi://}, {@code dns://}). The only addition is the
     * timeouts, so that a lab run cannot hang on a server that never answers.
     */
    private static String jndi(String name) {
        Hashtable<String, Object> env = new Hashtable<>();
        env.put("com.sun.jndi.ldap.connect.timeout", TIMEOUT_MS);
        env.put("com.sun.jndi.ldap.read.timeout", TIMEOUT_MS);
        env.put("com.sun.jndi.dns.timeout.initial", TIMEOUT_MS);
        env.put("com.sun.jndi.dns.timeout.retries", "1");
        Context ctx = null;
        try {
            ctx = new InitialContext(env);
            Object found = ctx.lookup(name);
            VulnerableApp.note("jndi-ok " + name + " -> " + describe(found));
            return String.valueOf(found);
        } catch (NamingException | RuntimeException e) {
            VulnerableApp.note("jndi-error " + name + " -> " + chain(e));
            return null;
        } finally {
            if (ctx != null) {
                try {
                    ctx.close();
                } catch (NamingException e) {
                    // Closing a context that failed is not worth a log line.
                }
            }
        }
    }

    private static String describe(Object found) {
        return found == null ? "null" : found.getClass().getName() + " " + found;
    }

    /**
     * "class: message; caused by class: message; ..." (a NamingException's cause is its root
     * cause, e.g. the "Operation not permitted" of a connect the kernel denied).
     */
    static String chain(Throwable e) {
        StringBuilder text = new StringBuilder();
        int depth = 0;
        for (Throwable t = e; t != null && depth < 8; t = t.getCause(), depth++) {
            if (depth > 0) {
                text.append("; caused by ");
            }
            text.append(t.getClass().getName()).append(": ").append(t.getMessage());
        }
        return text.toString().replace('\n', ' ');
    }
}
