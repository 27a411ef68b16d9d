package dev.gosling.jobs;

import dev.gosling.trainer.GoslingException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;

/**
 * The CLI: {@code ./gosling <command> ...} locally, or
 * {@code spark-submit --class dev.gosling.jobs.Main gosling.jar <command> ...} on a cluster.
 * User errors ({@link GoslingException}) print one line and exit 2; stack traces only with --debug.
 */
@Command(name = "gosling", mixinStandardHelpOptions = true, version = "gosling 0.1.0",
        description = "RWKV-7 data preparation on Spark and RWKV-7 training in Java.",
        subcommands = {MakeDataCommand.class, PrepareCommand.class, InitCommand.class, TrainCommand.class, EvalCommand.class,
                GenerateCommand.class, InspectCommand.class, BenchCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {

    @Option(names = "--debug", scope = CommandLine.ScopeType.INHERIT, description = "Print stack traces for errors.")
    boolean debug;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a command is required");
    }

    /** Runs the CLI and returns the exit code, so tests can call it without exiting the JVM. */
    public static int execute(String... args) {
        return execute(null, null, args);
    }

    /** As {@link #execute(String...)}, printing to {@code stdout}/{@code stderr} where given (tests), else to stdout/stderr. */
    public static int execute(PrintWriter stdout, PrintWriter stderr, String... args) {
        Main main = new Main();
        CommandLine cli = new CommandLine(main);
        TrainFlags.addTo(cli.getSubcommands().get("init").getCommandSpec());
        TrainFlags.addTo(cli.getSubcommands().get("train").getCommandSpec());
        if (stdout != null) {
            cli.setOut(stdout);
        }
        if (stderr != null) {
            cli.setErr(stderr);
        }
        cli.setExecutionExceptionHandler((ex, commandLine, parseResult) -> {
            PrintWriter err = commandLine.getErr();
            Throwable userError = GoslingException.findIn(ex);
            if (main.debug || userError == null) {
                ex.printStackTrace(err);
            }
            err.println("gosling: error: " + (userError != null ? userError.getMessage() : String.valueOf(ex)));
            err.flush();
            return 2;
        });
        cli.setParameterExceptionHandler((ex, arguments) -> {
            CommandLine bad = ex.getCommandLine();
            PrintWriter err = bad.getErr();
            err.println("gosling: error: " + ex.getMessage() + " (see '" + bad.getCommandSpec().qualifiedName() + " --help')");
            err.flush();
            return 2;
        });
        return cli.execute(args);
    }

    public static void main(String[] args) {
        int code = execute(args);
        System.exit(code);
    }
}
