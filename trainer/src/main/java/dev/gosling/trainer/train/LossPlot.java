package dev.gosling.trainer.train;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.checkpoint.AtomicFiles;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;

/**
 * The loss curve as {@code proj_dir/train_loss.png} (XChart, rendered headless), redrawn at each checkpoint save:
 * the step losses of the whole run (metrics.jsonl of earlier processes included), averaged into at most
 * {@value #MAX_POINTS} buckets, and the mean of each miniepoch. Written atomically.
 */
public final class LossPlot {
    public static final String FILE = "train_loss.png";
    static final int MAX_POINTS = 1000;

    static {
        if (System.getProperty("java.awt.headless") == null) {
            System.setProperty("java.awt.headless", "true");
        }
    }

    private final Path file;
    private final String title;
    /** real_step → {loss, miniepoch}; a step redone after a resume replaces the earlier value. */
    private final TreeMap<Long, double[]> points = new TreeMap<>();

    public LossPlot(Path projDir, String title) {
        this.file = projDir.resolve(FILE);
        this.title = title;
    }

    /** Adds the rows of an earlier metrics.jsonl. */
    public void addAll(Iterable<MetricsLog.Row> rows) {
        for (MetricsLog.Row row : rows) {
            add(row.step(), row.epoch(), row.loss());
        }
    }

    public void add(long step, long epoch, double loss) {
        points.put(step, new double[] {loss, epoch});
    }

    public Path file() {
        return file;
    }

    /**
     * Draws the PNG (nothing to draw before the first step). A runtime without java.desktop (AWT), such as a minimal
     * jlink image, cannot render: that is a one-line error, which the loop reports once and then trains on.
     */
    public void write() {
        if (points.isEmpty()) {
            return;
        }
        int n = points.size();
        int bucket = (n + MAX_POINTS - 1) / MAX_POINTS;
        double[] xs = new double[(n + bucket - 1) / bucket];
        double[] ys = new double[xs.length];
        TreeMap<Long, double[]> epochs = new TreeMap<>(); // miniepoch → {sum of steps, sum of losses, count}
        int i = 0;
        double sx = 0;
        double sy = 0;
        int count = 0;
        for (Map.Entry<Long, double[]> e : points.entrySet()) {
            double loss = e.getValue()[0];
            sx += e.getKey();
            sy += loss;
            if (++count == bucket) {
                xs[i] = sx / count;
                ys[i++] = sy / count;
                sx = sy = count = 0;
            }
            double[] sum = epochs.computeIfAbsent((long) e.getValue()[1], k -> new double[3]);
            sum[0] += e.getKey();
            sum[1] += loss;
            sum[2] += 1;
        }
        if (count > 0) {
            xs[i] = sx / count;
            ys[i] = sy / count;
        }
        double[] ex = new double[epochs.size()];
        double[] ey = new double[epochs.size()];
        int k = 0;
        for (double[] sum : epochs.values()) {
            ex[k] = sum[0] / sum[2]; // at the miniepoch's mean step
            ey[k++] = sum[1] / sum[2];
        }
        String label = bucket == 1 ? "step loss" : "step loss (mean of " + bucket + " steps)";
        byte[] png;
        try {
            png = Png.render(title, label, xs, ys, ex, ey);
        } catch (IOException | RuntimeException | LinkageError e) {
            throw new GoslingException(file + ": cannot render the loss plot (" + AtomicFiles.describe(e)
                    + "); a Java runtime with the java.desktop module renders it");
        }
        AtomicFiles.write(file, png);
    }

    /** XChart is touched only here, so a runtime without AWT fails inside {@link #write}'s try, not when the loop starts. */
    private static final class Png {
        static byte[] render(String title, String label, double[] xs, double[] ys, double[] ex, double[] ey) throws IOException {
            XYChart chart = new XYChartBuilder().width(1000).height(600).title(title).xAxisTitle("step").yAxisTitle("loss").build();
            chart.getStyler().setMarkerSize(5);
            XYSeries steps = chart.addSeries(label, xs, ys);
            steps.setMarker(SeriesMarkers.NONE);
            if (ex.length > 1) {
                chart.addSeries("miniepoch mean", ex, ey).setMarker(SeriesMarkers.CIRCLE);
            }
            return BitmapEncoder.getBitmapBytes(chart, BitmapEncoder.BitmapFormat.PNG);
        }
    }
}
