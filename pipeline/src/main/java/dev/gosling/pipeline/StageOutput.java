package dev.gosling.pipeline;

import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

import java.util.ArrayList;
import java.util.List;

/**
 * What a pipeline stage returns: every row it produced, kept and removed, in one lazy Dataset. A row whose
 * {@value #REASON} column is not null is removed, with that reason, a one-line {@value #DETAIL} and, for a duplicate,
 * the id it duplicates ({@value #DUPLICATE_OF}). Columns named {@code count_*} are the stage's counters: the plan sums
 * them over all rows. The plan writes {@code keptColumns} of the kept rows and the reject columns of the removed ones,
 * each output sharded by document id and sorted by {@code sortColumns} (so files do not depend on partitioning).
 */
public record StageOutput(Dataset<Row> rows, List<String> keptColumns, List<String> sortColumns) {
    public static final String ID = "id";
    public static final String TEXT = "text";
    public static final String REASON = "reason";
    public static final String DETAIL = "detail";
    public static final String DUPLICATE_OF = "duplicate_of";
    public static final String COUNTER_PREFIX = "count_";

    /** The document schema between stages: id (stable: file ordinal, line number) and text. */
    public static final StructType DOCS = new StructType(new StructField[] {
            DataTypes.createStructField(ID, DataTypes.LongType, false),
            DataTypes.createStructField(TEXT, DataTypes.StringType, false)});

    /** The columns of a rejects file. */
    public static final List<String> REJECT_COLUMNS = List.of(ID, REASON, DETAIL, DUPLICATE_OF, TEXT);

    /** id, text, reason, detail, duplicate_of, then the named long counters: the rows a document stage emits. */
    public static StructType docRows(String... counters) {
        List<StructField> f = new ArrayList<>(List.of(
                DataTypes.createStructField(ID, DataTypes.LongType, false),
                DataTypes.createStructField(TEXT, DataTypes.StringType, false),
                DataTypes.createStructField(REASON, DataTypes.StringType, true),
                DataTypes.createStructField(DETAIL, DataTypes.StringType, true),
                DataTypes.createStructField(DUPLICATE_OF, DataTypes.LongType, true)));
        for (String c : counters) {
            f.add(DataTypes.createStructField(COUNTER_PREFIX + c, DataTypes.LongType, false));
        }
        return new StructType(f.toArray(new StructField[0]));
    }

    /** A document stage's output: kept rows are (id, text), sorted by id. */
    public static StageOutput documents(Dataset<Row> rows) {
        return new StageOutput(rows, List.of(ID, TEXT), List.of(ID));
    }

    public boolean hasRejects() {
        return List.of(rows.columns()).contains(REASON);
    }
}
