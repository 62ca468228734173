import java.util.Hashtable;
import javax.naming.Context;
import javax.naming.NamingException;
import javax.naming.directory.Attributes;
import javax.naming.directory.DirContext;
import javax.naming.directory.InitialDirContext;

/**
 * Benign: a JVM that authenticates against its company LDAP directory and reads a user's
 * entry, through the same JDK LDAP provider the attack abuses - a simple bind, then a search
 * for {@code uid=alice,ou=people,dc=lab,dc=example}, which returns a plain entry. Its policy
 * allows it 127.0.0.1:1389, so none of this may alert.
 *
 * <p>Usage: {@code LabDirectoryClient [ldap://HOST:PORT]}. Prints {@code mail ...} and exits 0
 * when the entry came back.
 */
public final class LabDirectoryClient {
    private LabDirectoryClient() {}

    public static void main(String[] args) throws NamingException {
        Hashtable<String, Object> env = new Hashtable<>();
        env.put(Context.INITIAL_CONTEXT_FACTORY, "com.sun.jndi.ldap.LdapCtxFactory");
        env.put(Context.PROVIDER_URL, args.length > 0 ? args[0] : "ldap://127.0.0.1:1389");
        env.put(Context.SECURITY_AUTHENTICATION, "simple");
        env.put(Context.SECURITY_PRINCIPAL, "cn=reader,dc=lab,dc=example");
        env.put(Context.SECURITY_CREDENTIALS, "reader-password");
        env.put("com.sun.jndi.ldap.connect.timeout", "3000");
        env.put("com.sun.jndi.ldap.read.timeout", "3000");
        DirContext ctx = new InitialDirContext(env);
        try {
            Attributes entry = ctx.getAttributes("uid=alice,ou=people,dc=lab,dc=example");
            System.out.println("mail " + entry.get("mail").get());
        } finally {
            ctx.close();
        }
    }
}
