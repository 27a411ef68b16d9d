package dev.gosling.checkpoint

import dev.gosling.checkpoint.CheckpointFixtures._
import dev.gosling.trainer.GoslingException
import dev.gosling.trainer.checkpoint.CheckpointInspector.ModelShape
import dev.gosling.trainer.checkpoint.{CheckpointInspector, DType, NamedTensor, SafeTensors, StateDict, TorchCheckpoint}
import org.scalatest.funsuite.AnyFunSuite

import java.nio.file.Files
import scala.jdk.CollectionConverters._

class CheckpointInspectorSuite extends AnyFunSuite {
  // L=2, C=128, V=300, LoRA dims decay 32, aaa 32, mv 32, gate 64.
  private lazy val toy: StateDict = rwkv7StateDict(2, 128, 300, 32, 32, 32, 64)

  test("infers an RWKV-7 model from a .pth and a .safetensors alike, and counts its parameters") {
    withTempDir { dir =>
      val pth = dir.resolve("rwkv7-toy.pth")
      val st = dir.resolve("rwkv7-toy.safetensors")
      TorchCheckpoint.write(pth, toy)
      SafeTensors.write(st, toy)
      for ((file, format) <- Seq(pth -> "torch zip", st -> "safetensors")) {
        val s = CheckpointInspector.inspect(file)
        assert(s.format == format && s.fileBytes == Files.size(file))
        val m = s.model.get
        assert((m.nLayer, m.nEmbd, m.vocabSize, m.nHead, m.headSize, m.ffnHidden) == (2, 128L, 300L, 2L, 64L, 512L))
        assert((m.dDecay, m.dAaa, m.dMv, m.dGate) == (32L, 32L, 32L, 64L))
        assert(s.totalParameters == 557312L && s.totalParameters == m.formulaParameters)
        assert(s.tensors.size == toy.size)
        assert(s.notes.asScala == Seq("keys and shapes match the RWKV-7 x070 state dict (72 tensors, 557,312 parameters by the RWKV-LM formula)"))
        val table = s.table()
        assert(table.linesIterator.exists(l => l.matches("""emb\.weight\s+BF16\s+\[300, 128\]\s+38,400""")), table)
        assert(table.contains("total parameters: 557,312  (BF16: 557,312)"))
        assert(table.contains("model: RWKV-7 x070: n_layer 2, n_embd 128, vocab 300, n_head 2 x head_size 64, ffn 512, LoRA decay 32 / aaa 32 / mv 32 / gate 64"))
      }
    }
  }

  test("the parameter formula reproduces the reference's counts, and the expected key set sums to it") {
    val l12 = new ModelShape(12, 768, 65536, 12, 64, 3072, 64, 64, 32, 128)
    assert(l12.formulaParameters == 191084544L)
    assert(l12.expectedShapes().values().asScala.map(_.product).sum == 191084544L)
    assert(new ModelShape(24, 1024, 65536, 16, 64, 4096, 64, 64, 32, 128).formulaParameters == 450834432L)
    assert(l12.expectedShapes().keySet().asScala.take(3).toSeq == Seq("emb.weight", "blocks.0.ln1.weight", "blocks.0.ln1.bias"))
  }

  test("missing, misshapen and extra keys are listed") {
    val tensors = toy.tensors().asScala.filterNot(_.name == "head.weight").map { t =>
      if (t.name == "blocks.1.att.k_k") NamedTensor.fromFloats(t.name, DType.BF16, Array(128L), new Array[Float](128)) else t
    } :+ NamedTensor.fromFloats("blocks.0.att.time_state", DType.F32, Array(2L), Array(0f, 0f))
    withTempDir { dir =>
      val file = dir.resolve("odd.pth")
      TorchCheckpoint.write(file, StateDict.of(tensors.toSeq: _*))
      val notes = CheckpointInspector.inspect(file).notes.asScala
      assert(notes.contains("1 expected keys missing: head.weight"))
      assert(notes.contains("1 keys with unexpected shapes: blocks.1.att.k_k [128] (expected [1, 1, 128])"))
      assert(notes.contains("1 keys beyond the RWKV-7 state dict: blocks.0.att.time_state"))
    }
  }

  test("a ZeRO-3 '_forward_module.' prefix is noted and looked through") {
    withTempDir { dir =>
      val file = dir.resolve("zero3.safetensors")
      SafeTensors.write(file, StateDict.of(toy.tensors().asScala.map(t => t.withName("_forward_module." + t.name)).toSeq: _*))
      val s = CheckpointInspector.inspect(file)
      assert(s.model.get.nLayer == 2)
      assert(s.notes.asScala.head.startsWith("every key starts with '_forward_module.'"))
      assert(s.tensors.get(0).name.startsWith("_forward_module."), "the listing shows the keys as stored")
    }
  }

  test("inspection reads headers only: a checkpoint with damaged tensor data still inspects") {
    withTempDir { dir =>
      val file = dir.resolve("damaged.pth")
      TorchCheckpoint.write(file, toy)
      val bytes = Files.readAllBytes(file)
      val record = TorchZipLayout.parse(bytes).records.find(_.name == "damaged/data/0").get
      bytes(record.dataOffset.toInt) = (bytes(record.dataOffset.toInt) ^ 0xff).toByte
      Files.write(file, bytes)
      intercept[GoslingException](TorchCheckpoint.read(file))
      assert(CheckpointInspector.inspect(file).model.get.vocabSize == 300)
    }
  }

  test("other state dicts and other files are reported plainly") {
    withTempDir { dir =>
      val plain = dir.resolve("plain.pth")
      TorchCheckpoint.write(plain, StateDict.of(NamedTensor.fromFloats("w", DType.F32, Array(2L), Array(1f, 2f))))
      val s = CheckpointInspector.inspect(plain)
      assert(s.model.isEmpty && s.table().contains("model: not an RWKV-7 x070 state dict"))
      val text = dir.resolve("notes.txt")
      Files.write(text, "hello world".getBytes)
      assert(intercept[GoslingException](CheckpointInspector.inspect(text)).getMessage ==
        s"$text: neither a torch .pth (zip) nor a .safetensors file")
      val absent = dir.resolve("absent.pth")
      assert(intercept[GoslingException](CheckpointInspector.inspect(absent)).getMessage == s"$absent: no such file (check the path)")
    }
  }
}
