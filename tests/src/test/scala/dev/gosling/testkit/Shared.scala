package dev.gosling.testkit

import java.nio.charset.StandardCharsets
import java.nio.file.{Files, Path, Paths}
import scala.jdk.CollectionConverters._

/** The read-only `../shared` folder beside the checkout: fixtures, vocab and references. Tests may read it; the product may not. */
object Shared {
  val root: Path = Paths.get(sys.props.getOrElse("gosling.shared", "../shared")).toAbsolutePath.normalize

  /** The repository root (for the launcher, conf/ and the README). */
  val repo: Path = Paths.get(sys.props.getOrElse("gosling.repo", "..")).toAbsolutePath.normalize

  def path(relative: String): Path = {
    val p = root.resolve(relative)
    require(Files.exists(p), s"shared fixture missing: $p (tests expect ../shared beside the checkout)")
    p
  }

  /** A fixture TSV: header row, TAB-separated, no quoting. Each row as column -> value. */
  def tsv(name: String): Seq[Map[String, String]] = {
    val lines = Files.readAllLines(path("fixtures/" + name), StandardCharsets.UTF_8).asScala.toSeq.filter(_.nonEmpty)
    val header = lines.head.split("\t", -1).toSeq
    lines.tail.map { line =>
      val cells = line.split("\t", -1).toSeq
      require(cells.size == header.size, s"$name: row has ${cells.size} cells, header ${header.size}: $line")
      header.zip(cells).toMap
    }
  }
}
