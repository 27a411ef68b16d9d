package dev.gosling.backend.cuda

import dev.gosling.kernels.KernelLoader
import dev.gosling.testkit.Shared
import org.scalatest.funsuite.AnyFunSuite

import java.nio.file.Files
import scala.jdk.CollectionConverters._

/**
 * The kernel sources without a GPU: the loader's list matches kernels/src/main/cuda, the jar carries every source
 * (the NVRTC fallback needs them), every kernel the CUDA backend asks for is an extern "C" kernel of the named
 * source, and a build on a machine with nvcc carries the fatbins.
 */
class KernelSourcesSuite extends AnyFunSuite {

  private val cudaDir = Shared.repo.resolve("kernels/src/main/cuda")
  private def files(ext: String): Set[String] =
    Files.list(cudaDir).iterator.asScala.map(_.getFileName.toString).filter(_.endsWith(ext)).toSet

  test("KernelLoader.OPS and HEADERS list exactly the .cu and .cuh files") {
    assert(KernelLoader.OPS.asScala.map(_ + ".cu").toSet == files(".cu"))
    assert(KernelLoader.HEADERS.asScala.toSet == files(".cuh"))
  }

  test("the jar carries every source and header, identical to the tree") {
    for (f <- files(".cu") ++ files(".cuh"))
      assert(KernelLoader.resourceText("cuda/" + f) == Files.readString(cudaDir.resolve(f)), f)
  }

  test("every kernel the CUDA backend loads is an extern \"C\" __global__ function of its source") {
    val backend = Files.readString(
      Shared.repo.resolve("trainer/src/main/java/dev/gosling/trainer/backend/cuda/CudaBackend.java"))
    val uses = """loader\.kernel\("(\w+)", "(\w+)"\)""".r.findAllMatchIn(backend).map(m => (m.group(1), m.group(2))).toSeq
    assert(uses.size >= 25)
    for ((op, name) <- uses) {
      val src = Files.readString(cudaDir.resolve(op + ".cu"))
      val declared = ("""extern "C" __global__ void (?:__launch_bounds__\([^)]*\) )?""" + name + """\(""").r
      assert(declared.findFirstIn(src).isDefined, s"$op.cu declares no extern \"C\" kernel $name")
    }
  }

  test("the WKV7 configurations the backend selects from are the ones it loads") {
    val backend = Files.readString(
      Shared.repo.resolve("trainer/src/main/java/dev/gosling/trainer/backend/cuda/CudaBackend.java"))
    val rows = """new RowKernel\((\d+), (\d+), (\d+), (true|false)\)""".r.findAllMatchIn(backend)
      .map(m => s"${m.group(1)}_${m.group(2)}_${m.group(3)}" + (if (m.group(4) == "true") "p" else "")).toSet
    val cols = """new ColKernel\((\d+), (\d+), (\d+)\)""".r.findAllMatchIn(backend).map(m => s"${m.group(1)}_${m.group(2)}_${m.group(3)}").toSet
    assert(rows.nonEmpty && cols.nonEmpty)
    for (r <- rows; k <- Seq("forward", "backward_rows"))
      assert(backend.contains(s"""loader.kernel("wkv7", "wkv7_${k}_v5_$r")"""), s"the backend does not load ${k} $r")
    for (c <- cols)
      assert(backend.contains(s"""loader.kernel("wkv7", "wkv7_backward_cols_v5_$c")"""), s"the backend does not load cols $c")
    val chunked = """new ChunkKernel\((\d+), (\d+), (\d+)\)""".r.findAllMatchIn(backend).map(m => s"${m.group(1)}_${m.group(2)}_${m.group(3)}").toSet
    assert(chunked.nonEmpty)
    for (k <- chunked)
      assert(backend.contains(s"""loader.kernel("wkv7", "wkv7_forward_chunk_$k")"""), s"the backend does not load chunk $k")
  }

  test("the one-read cross-entropy variants the backend lists are compiled") {
    val backend = Files.readString(
      Shared.repo.resolve("trainer/src/main/java/dev/gosling/trainer/backend/cuda/CudaBackend.java"))
    val src = Files.readString(cudaDir.resolve("cross_entropy.cu"))
    val variants = """new CeRows\((\d+), (\d+), (\d+), (true|false), (true|false)\)""".r.findAllMatchIn(backend).toSeq
    assert(variants.size >= 4)
    for (m <- variants) {
      val (nt, r4, s4) = (m.group(1), m.group(2), m.group(3))
      val line = if (m.group(5) == "true") s"CE_ROWS_PACKED($nt, $r4, $s4)\n"
        else s"CE_ROWS($nt, $r4, $s4, ${m.group(4)}, ${if (m.group(4) == "true") "" else "_nopipe"})\n"
      assert(src.contains(line), s"cross_entropy.cu has no line $line")
    }
  }

  test("a build on a machine with nvcc carries one fatbin per source") {
    val nvcc = sys.env.get("PATH").toSeq.flatMap(_.split(':')).exists(d => Files.isExecutable(java.nio.file.Paths.get(d, "nvcc"))) ||
      Files.isExecutable(java.nio.file.Paths.get("/usr/local/cuda/bin/nvcc"))
    if (!nvcc) cancel("nvcc is not on this machine: the jar was built without fatbins (NVRTC fallback)")
    assert(KernelLoader.hasFatbins)
    for (op <- KernelLoader.OPS.asScala)
      assert(classOf[KernelLoader].getResource(s"/dev/gosling/kernels/$op.fatbin") != null, op)
  }
}
