package dev.gosling.pipeline.prepare;

import dev.gosling.trainer.GoslingException;
import org.apache.parquet.format.ColumnChunk;
import org.apache.parquet.format.ColumnMetaData;
import org.apache.parquet.format.Encoding;
import org.apache.parquet.format.FileMetaData;
import org.apache.parquet.format.KeyValue;
import org.apache.parquet.format.PageEncodingStats;
import org.apache.parquet.format.RowGroup;
import org.apache.parquet.format.Util;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;

/**
 * Makes a Parquet file's footer independent of the JVM that wrote it. parquet-mr lists each column chunk's encodings
 * by iterating a HashSet of enum constants, whose order follows identity hash codes: the same rows written by two
 * executors (or two runs) get footers that differ in that order only. Sorting those lists (and the encoding stats and
 * key-value metadata) in place gives one canonical footer; it has the same length, so no offset moves.
 */
public final class ParquetFooters {
    private static final byte[] MAGIC = "PAR1".getBytes(StandardCharsets.US_ASCII);

    private ParquetFooters() {
    }

    public static void canonicalize(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            long size = ch.size();
            ByteBuffer tail = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, tail, size - 8);
            int footerLen = tail.getInt(0);
            byte[] magic = new byte[4];
            tail.position(4);
            tail.get(magic);
            if (size < 12 || !java.util.Arrays.equals(magic, MAGIC) || footerLen <= 0 || footerLen > size - 12) {
                throw new GoslingException(file + ": not a Parquet file (bad footer)");
            }
            ByteBuffer footer = ByteBuffer.allocate(footerLen);
            long at = size - 8 - footerLen;
            readFully(ch, footer, at);
            FileMetaData md = Util.readFileMetaData(new ByteArrayInputStream(footer.array()));
            for (RowGroup rg : md.getRow_groups()) {
                for (ColumnChunk cc : rg.getColumns()) {
                    ColumnMetaData c = cc.getMeta_data();
                    if (c == null) {
                        continue;
                    }
                    if (c.getEncodings() != null) {
                        c.getEncodings().sort(Comparator.comparingInt(Encoding::getValue));
                    }
                    if (c.getEncoding_stats() != null) {
                        c.getEncoding_stats().sort(Comparator.comparingInt((PageEncodingStats s) -> s.getPage_type().getValue())
                                .thenComparingInt(s -> s.getEncoding().getValue()));
                    }
                }
            }
            if (md.getKey_value_metadata() != null) {
                md.getKey_value_metadata().sort(Comparator.comparing(KeyValue::getKey));
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream(footerLen);
            Util.writeFileMetaData(md, out);
            byte[] canonical = out.toByteArray();
            if (canonical.length != footerLen) {
                throw new GoslingException(file + ": the canonical Parquet footer has " + canonical.length + " bytes, the original "
                        + footerLen + "; cannot rewrite it in place");
            }
            if (!java.util.Arrays.equals(canonical, footer.array())) {
                ByteBuffer b = ByteBuffer.wrap(canonical);
                while (b.hasRemaining()) {
                    ch.write(b, at + b.position());
                }
            }
            ch.force(true);
        } catch (IOException e) {
            throw new GoslingException(file + ": cannot canonicalize the Parquet footer: " + e.getMessage(), e);
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer b, long at) throws IOException {
        while (b.hasRemaining()) {
            if (ch.read(b, at + b.position()) < 0) {
                throw new IOException("unexpected end of file");
            }
        }
        b.flip();
    }
}
