package dev.gosling.jobs;

import picocli.CommandLine.Command;

/** {@code gosling bench <what>}: benchmarks that print a table (medians over repeated runs). */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Benchmarks that print a table.",
        subcommands = {})
public final class BenchCommand {
}
