package dev.gosling.jobs;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.train.Checkpoints;
import dev.gosling.trainer.train.MetricsLog;
import dev.gosling.trainer.train.TrainLog;
import dev.gosling.trainer.train.TrainState;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A {@code --proj_dir} given as a Hadoop file system URI ({@code hdfs://…}, {@code s3a://…}, {@code file://…}): the
 * trainer works in a local directory, and this copies what auto-resume needs from the URI into it before the run and
 * every file rank 0 commits back to the URI after each save (to a temporary name, then renamed; on HDFS the rename is
 * atomic, on object stores it is a copy). A plain path is used directly and needs no copying.
 */
final class ProjDirSync {
    private static final Pattern NUMBERED = Pattern.compile("rwkv-(\\d+)\\.pth");

    private final URI remote;
    private final FileSystem fs;
    private final java.nio.file.Path local;

    /** Whether {@code projDir} names a Hadoop file system URI (a scheme of two or more letters) rather than a path. */
    static boolean isUri(String projDir) {
        try {
            String scheme = new URI(projDir).getScheme();
            return scheme != null && scheme.length() > 1;
        } catch (URISyntaxException e) {
            return false;
        }
    }

    /** @param hadoopConf the driver's Hadoop configuration entries (the executors' may lack the cluster's settings) */
    ProjDirSync(String projDir, Map<String, String> hadoopConf, java.nio.file.Path local) {
        this.remote = URI.create(projDir.endsWith("/") ? projDir : projDir + "/");
        this.local = local;
        Configuration conf = new Configuration();
        hadoopConf.forEach(conf::set);
        try {
            this.fs = FileSystem.get(remote, conf);
            // No .crc side files on a local (file://) target: the checkpoints carry their own checks.
            fs.setWriteChecksum(false);
            fs.setVerifyChecksum(false);
            fs.mkdirs(new Path(remote));
        } catch (IOException e) {
            throw new GoslingException("--proj_dir " + projDir + ": cannot open it through Hadoop's FileSystem: " + e.getMessage());
        }
    }

    java.nio.file.Path local() {
        return local;
    }

    /**
     * Copies what the trainer's auto-resume reads: rwkv-init.pth, rwkv-last.pth, the two highest rwkv-N.pth (the
     * second for the "Bad checkpoint" fallback), each with its .state; with {@code logs} also train_log.txt and
     * metrics.jsonl, which rank 0 appends to.
     */
    void download(boolean logs) {
        try {
            Files.createDirectories(local);
            TreeMap<Long, String> numbered = new TreeMap<>();
            List<String> wanted = new ArrayList<>();
            for (FileStatus status : fs.listStatus(new Path(remote))) {
                String name = status.getPath().getName();
                Matcher m = NUMBERED.matcher(name);
                if (m.matches()) {
                    numbered.put(Long.parseLong(m.group(1)), name);
                } else if (name.equals(Checkpoints.INIT) || name.equals(Checkpoints.LAST)
                        || (logs && (name.equals(TrainLog.FILE) || name.equals(MetricsLog.FILE)))) {
                    wanted.add(name);
                }
            }
            numbered.descendingMap().values().stream().limit(2).forEach(wanted::add);
            for (String name : new ArrayList<>(wanted)) {
                if (name.endsWith(".pth")) {
                    wanted.add(TrainState.besides(java.nio.file.Path.of(name)).toString());
                }
            }
            for (String name : wanted) {
                Path from = new Path(remote.resolve(name));
                if (fs.exists(from)) {
                    fs.copyToLocalFile(false, from, new Path(local.resolve(name).toUri()), true);
                }
            }
        } catch (IOException e) {
            throw new GoslingException("--proj_dir " + remote + ": cannot copy the checkpoints to resume from: " + e.getMessage());
        }
    }

    /** Copies committed files to the URI, each under a temporary name first. */
    void upload(List<java.nio.file.Path> files) {
        for (java.nio.file.Path file : files) {
            if (!Files.isRegularFile(file)) {
                continue;
            }
            String name = file.getFileName().toString();
            Path target = new Path(remote.resolve(name));
            Path temporary = new Path(remote.resolve("." + name + ".uploading"));
            try {
                fs.copyFromLocalFile(false, true, new Path(file.toUri()), temporary);
                fs.delete(target, false);
                if (!fs.rename(temporary, target)) {
                    throw new IOException("rename " + temporary + " -> " + target + " failed");
                }
            } catch (IOException e) {
                throw new GoslingException("--proj_dir " + remote + ": cannot copy " + name + " there: " + e.getMessage());
            }
        }
    }

    /** Removes the local working copy. */
    void deleteLocal() {
        try (var walk = Files.walk(local)) {
            walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            // A leftover temporary directory is harmless.
        }
    }
}
