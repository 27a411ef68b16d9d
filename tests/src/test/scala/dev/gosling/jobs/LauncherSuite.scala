package dev.gosling.jobs

import java.io.File
import java.nio.charset.StandardCharsets.UTF_8
import java.nio.file.{Files, Path}
import java.util.concurrent.TimeUnit

import dev.gosling.testkit.Shared
import org.scalatest.funsuite.AnyFunSuite

import scala.jdk.CollectionConverters._

/**
 * The shipped entry points, as users run them: the ./gosling launcher (README's first command) and the shaded jar
 * through Spark's real SparkSubmit class (what spark-submit runs), each as a separate process.
 */
class LauncherSuite extends AnyFunSuite {
  private val jar = Shared.repo.resolve("jobs/target/gosling.jar")
  private val lib = Shared.repo.resolve("jobs/target/lib")

  private def run(cmd: Seq[String], dir: Path): (Int, String) = {
    val pb = new ProcessBuilder(cmd.asJava).directory(dir.toFile).redirectErrorStream(true)
    val p = pb.start()
    val out = new String(p.getInputStream.readAllBytes(), UTF_8)
    assert(p.waitFor(300, TimeUnit.SECONDS), "timed out")
    (p.exitValue(), out)
  }

  private def requirePackaged(): Unit =
    assume(Files.exists(jar) && Files.isDirectory(lib), s"$jar is built by `mvn package`/`verify` (run the README's test command)")

  test("./gosling make-data on the bundled sample corpus prints make_data's final line") {
    requirePackaged()
    val dir = Files.createTempDirectory("gosling-launcher")
    val (code, out) = run(Seq(Shared.repo.resolve("gosling").toString, "make-data",
      Shared.repo.resolve("data/sample/demo.jsonl").toString, "3", "4096"), dir)
    assert(code == 0, out)
    assert(out.linesIterator.filter(_.nonEmpty).toSeq.last == "--my_exit_tokens 200499 --magic_prime 47 --ctx_len 4096", out)
    assert(Files.size(dir.resolve("demo.bin")) == 400998) // default output: the input's name in the working directory
  }

  test("./gosling prints a one-line error and exits 2 on a bad argument") {
    requirePackaged()
    val (code, out) = run(Seq(Shared.repo.resolve("gosling").toString, "make-data", "missing.jsonl", "1", "x"), Files.createTempDirectory("g"))
    assert(code == 2, out)
    assert(out.contains("Invalid value for positional parameter at index 2 (CTX_LEN)"), out)
  }

  test("the same jar runs through SparkSubmit (spark-submit --class dev.gosling.jobs.Main gosling.jar ...)") {
    requirePackaged()
    val dir = Files.createTempDirectory("gosling-submit")
    val java = Path.of(sys.props("java.home"), "bin", "java").toString
    val cp = Seq(jar.toString, lib.toString + File.separator + "*").mkString(File.pathSeparator)
    val (code, out) = run(Seq(java, "-cp", cp, "org.apache.spark.deploy.SparkSubmit", "--master", "local[2]",
      "--class", "dev.gosling.jobs.Main", jar.toString,
      "make-data", Shared.path("fixtures/demo.jsonl").toString, "1", "512", "--out", dir.resolve("sub").toString), dir)
    assert(code == 0, out)
    assert(out.contains("### Final sub.bin/idx has 66833 tokens, 182 items."), out)
  }
}
