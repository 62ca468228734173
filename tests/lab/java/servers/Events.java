import java.io.InputStream;

/**
 * What the lab's servers saw, one line per event on stdout:
 * {@code event SERVER KIND DETAIL}, e.g. {@code event ldap:1389 accept 127.0.0.1:40112} or
 * {@code event dns query akialabfakekey000001.exfil.lab}. The lab runner counts these lines:
 * they are the proof of what reached the attacker (and what did not).
 * {@code ready SERVER ADDRESS} says a server is listening.
 */
final class Events {
    private Events() {}

    static void emit(String server, String kind, Object detail) {
        line("event " + server + " " + kind + " " + String.valueOf(detail).replace('\n', ' '));
    }

    static void ready(String server, Object address) {
        line("ready " + server + " " + address);
    }

    static void line(String text) {
        synchronized (System.out) {
            System.out.println(text);
            System.out.flush();
        }
    }

    /**
     * Makes the process exit after {@code seconds}, and also as soon as stdin reaches EOF when
     * {@code exitOnEof} is set (the runner holds the other end: if it dies, so do we).
     */
    static void bounded(long seconds, boolean exitOnEof) {
        daemon("lifetime", () -> {
            sleep(seconds * 1000);
            line("lifetime over, exiting");
            System.exit(0);
        });
        if (exitOnEof) {
            daemon("stdin", () -> {
                try {
                    InputStream in = System.in;
                    while (in.read() >= 0) {
                        // Input is ignored; only its end matters.
                    }
                } catch (Exception e) {
                    // Treated as EOF.
                }
                line("stdin closed, exiting");
                System.exit(0);
            });
        }
    }

    static Thread daemon(String name, Runnable body) {
        Thread thread = new Thread(body, name);
        thread.setDaemon(true);
        thread.start();
        return thread;
    }

    static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
