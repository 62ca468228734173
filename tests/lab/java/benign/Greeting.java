/** Benign: the file the {@code benign-javac} scenario compiles, a build step on the host. */
public final class Greeting {
    private Greeting() {}

    public static void main(String[] args) {
        System.out.println("hello from the lab");
    }
}
