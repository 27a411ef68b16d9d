package dev.gosling.kernels

import org.scalatest.funsuite.AnyFunSuite

/** The kernel argument block: each argument's entry of the pointer array points at its value, structs take consecutive slots. */
class LaunchArgsSuite extends AnyFunSuite {

  test("scalars take a slot each, a struct its words in order, and the pointer entries follow") {
    val args = new LaunchArgs(8)
    try {
      args.reset().ptr(0x1234L).struct(Array(7L, 8L, (3L << 32) | 5L)).i32(-1).f32(1.5f)
      assert(args.count() == 4)
      assert(args.wordAt(0, 0) == 0x1234L)
      assert((0 until 3).map(args.wordAt(1, _)) == Seq(7L, 8L, (3L << 32) | 5L))
      assert(args.pointerAt(2) - args.pointerAt(1) == 24, "the int after the struct sits past its three words")
      assert(args.wordAt(2, 0) == 0xffffffffL)
      assert(args.wordAt(3, 0) == (java.lang.Float.floatToRawIntBits(1.5f) & 0xffffffffL))
      // a new list starts over at slot 0
      args.reset().i64(42L)
      assert(args.count() == 1 && args.pointerAt(0) == args.pointerAt(0) && args.wordAt(0, 0) == 42L)
    } finally args.close()
  }

  test("more words than slots is refused with one line") {
    val args = new LaunchArgs(4)
    try {
      val e = intercept[IllegalStateException](args.reset().ptr(1L).struct(new Array[Long](4)))
      assert(e.getMessage == "kernel arguments over 4 8-byte slots")
      args.reset().struct(new Array[Long](4)) // exactly full is fine
      assert(args.count() == 1)
    } finally args.close()
  }
}
