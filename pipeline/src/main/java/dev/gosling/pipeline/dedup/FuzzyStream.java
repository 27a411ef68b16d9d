package dev.gosling.pipeline.dedup;

import org.apache.spark.sql.Row;

import java.util.Arrays;
import java.util.Iterator;
import java.util.NoSuchElementException;

/**
 * A lazy partition iterator for the streaming reducers of fuzzy dedup: each input row (sorted by the group key) is
 * handed to {@link #accept} and may emit a few rows; {@link #finish} runs once at the end of the partition and may emit
 * a few more (per-partition counters). Only the rows emitted by one call are buffered, so memory does not grow with a
 * group's size.
 */
abstract class FuzzyStream implements Iterator<Row> {
    private final Iterator<Row> in;
    private Row[] pending = new Row[4];
    private int pendingCount;
    private int pendingPos;
    private boolean finished;

    FuzzyStream(Iterator<Row> in) {
        this.in = in;
    }

    final void emit(Row r) {
        if (pendingCount == pending.length) {
            pending = Arrays.copyOf(pending, pending.length * 2);
        }
        pending[pendingCount++] = r;
    }

    /** Handles one input row. */
    abstract void accept(Row r);

    /** Runs once when the input is exhausted. */
    void finish() {
    }

    @Override
    public final boolean hasNext() {
        while (pendingPos == pendingCount) {
            Arrays.fill(pending, 0, pendingCount, null);
            pendingPos = 0;
            pendingCount = 0;
            if (in.hasNext()) {
                accept(in.next());
            } else if (!finished) {
                finished = true;
                finish();
            } else {
                return false;
            }
        }
        return true;
    }

    @Override
    public final Row next() {
        if (!hasNext()) {
            throw new NoSuchElementException();
        }
        return pending[pendingPos++];
    }
}
