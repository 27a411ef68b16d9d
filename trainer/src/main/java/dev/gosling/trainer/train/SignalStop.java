package dev.gosling.trainer.train;

import sun.misc.Signal;
import sun.misc.SignalHandler;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;

/**
 * Turns SIGINT and SIGTERM into a {@link StopFlag} request for as long as it is open: the first signal lets the loop
 * finish its step and save {@code rwkv-last.pth} (exit 0); a second one exits at once with 128 + the signal number,
 * for a save that takes too long (the atomic writes leave the previous checkpoint intact). Closing restores the
 * handlers that were there before. Signals are process-wide, so only a command that owns the process installs this
 * (the CLI), never the trainer inside a Spark task.
 */
public final class SignalStop implements AutoCloseable {
    private final List<Signal> signals = new ArrayList<>();
    private final List<SignalHandler> previous = new ArrayList<>();

    private SignalStop() {
    }

    /** Installs the handlers; {@code err} gets one line per signal. */
    public static SignalStop install(StopFlag flag, PrintStream err) {
        SignalStop stop = new SignalStop();
        for (String name : new String[] {"INT", "TERM"}) {
            Signal signal = new Signal(name);
            SignalHandler handler = received -> {
                if (flag.requested()) {
                    err.println("gosling: second SIG" + received.getName() + ": exiting now without saving");
                    err.flush();
                    Runtime.getRuntime().halt(128 + received.getNumber());
                }
                flag.request("SIG" + received.getName());
                err.println();
                err.println("gosling: SIG" + received.getName() + ": finishing this step, then saving rwkv-last.pth (signal again to exit at once)");
                err.flush();
            };
            stop.previous.add(Signal.handle(signal, handler));
            stop.signals.add(signal);
        }
        return stop;
    }

    @Override
    public void close() {
        for (int i = 0; i < signals.size(); i++) {
            Signal.handle(signals.get(i), previous.get(i));
        }
        signals.clear();
        previous.clear();
    }
}
