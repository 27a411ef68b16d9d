package dev.gosling.jobs;

import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;

/**
 * The one place a SparkSession is made. Embedded `local[*]` unless spark-submit (or --master, or spark.master) says
 * otherwise: setIfMissing lets every cluster setting win over the embedded defaults.
 */
public final class SparkSessions {
    private SparkSessions() {
    }

    public static SparkSession getOrCreate(String appName, String master) {
        return getOrCreate(appName, master, java.util.Map.of());
    }

    /** As above, with {@code defaults} set where neither spark-submit nor spark-defaults set them. */
    public static SparkSession getOrCreate(String appName, String master, java.util.Map<String, String> defaults) {
        SparkConf conf = new SparkConf();
        defaults.forEach(conf::setIfMissing);
        if (master != null && !master.isEmpty()) {
            conf.set("spark.master", master);
        }
        conf.setIfMissing("spark.master", "local[*]");
        conf.setIfMissing("spark.app.name", appName);
        conf.setIfMissing("spark.ui.showConsoleProgress", "false");
        conf.setIfMissing("spark.ui.enabled", "false");
        conf.setIfMissing("spark.sql.shuffle.partitions", "16");
        return SparkSession.builder().config(conf).getOrCreate();
    }
}
