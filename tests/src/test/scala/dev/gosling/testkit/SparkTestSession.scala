package dev.gosling.testkit

import java.io.File
import java.nio.file.{Files, Path, Paths}

import org.apache.spark.sql.SparkSession

/**
 * One SparkSession per test JVM (start-up costs seconds), re-made only when a suite needs another master.
 * `local-cluster[...]` launches real executor JVMs; they find Spark's jars through SPARK_HOME/jars (set by Surefire),
 * which is filled here with links to this JVM's classpath jars, and our classes through spark.executor.extraClassPath.
 */
object SparkTestSession {
  val LocalMaster = "local[2]"

  def get(master: String = LocalMaster, extra: Map[String, String] = Map.empty): SparkSession = synchronized {
    SparkSession.getActiveSession.orElse(SparkSession.getDefaultSession) match {
      case Some(s) if s.sparkContext.master == master && !s.sparkContext.isStopped && extra.forall { case (k, v) => s.conf.getOption(k).contains(v) } => s
      case other =>
        other.foreach(_.stop())
        SparkSession.clearActiveSession()
        SparkSession.clearDefaultSession()
        val b = SparkSession.builder().master(master).appName("gosling-tests")
          .config("spark.ui.enabled", "false")
          .config("spark.sql.shuffle.partitions", "4")
        if (master.startsWith("local-cluster")) {
          prepareSparkHome()
          b.config("spark.executor.extraClassPath", classDirs.mkString(File.pathSeparator))
        }
        extra.foreach { case (k, v) => b.config(k, v) }
        b.getOrCreate()
    }
  }

  private def classpath: Seq[String] = sys.props("java.class.path").split(File.pathSeparator).toSeq.filter(_.nonEmpty)

  private def classDirs: Seq[String] = classpath.filter(p => new File(p).isDirectory)

  /** SPARK_HOME/jars must list the jars executors need; links to the test classpath's jars. */
  private def prepareSparkHome(): Unit = {
    val home = sys.env.getOrElse("SPARK_HOME", sys.error("SPARK_HOME is not set: run the tests through Maven (Surefire sets it)"))
    val jars = Paths.get(home, "jars")
    Files.createDirectories(jars)
    classpath.filter(_.endsWith(".jar")).foreach { j =>
      val link: Path = jars.resolve(Paths.get(j).getFileName)
      if (!Files.exists(link)) Files.createSymbolicLink(link, Paths.get(j).toAbsolutePath)
    }
  }
}
