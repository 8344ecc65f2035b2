// Starts DynamoDB Local listening on 127.0.0.1 only. DynamoDB Local has no option for the
// address it binds (its Jetty server listens on every interface); this builds the server from
// the same command-line arguments, sets the host of its connectors to loopback, then starts
// it. Run in Java's source-file mode by scripts/dynamodb-local.sh, with DynamoDBLocal.jar on
// the class path. Everything goes through reflection, so nothing is compiled against the jar.
import java.lang.reflect.Field;
import java.lang.reflect.Method;

public class LoopbackServer {
    public static void main(String[] args) throws Exception {
        Class<?> runner = Class.forName("com.amazonaws.services.dynamodbv2.local.main.ServerRunner");
        Object proxy = runner.getMethod("createServerFromCommandLineArgs", String[].class)
                .invoke(null, (Object) args);
        Field serverField = proxy.getClass().getDeclaredField("server");
        serverField.setAccessible(true);
        Object server = serverField.get(proxy);
        Object[] connectors = (Object[]) server.getClass().getMethod("getConnectors").invoke(server);
        if (connectors.length == 0) {
            throw new IllegalStateException("DynamoDB Local created no connector to bind");
        }
        for (Object connector : connectors) {
            Method setHost = connector.getClass().getMethod("setHost", String.class);
            setHost.invoke(connector, "127.0.0.1");
        }
        proxy.getClass().getMethod("start").invoke(proxy);
    }
}
