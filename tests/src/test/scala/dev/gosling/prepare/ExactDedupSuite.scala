package dev.gosling.prepare

import java.security.MessageDigest

import dev.gosling.pipeline.dedup.ExactDedup
import dev.gosling.trainer.GoslingException
import org.scalatest.funsuite.AnyFunSuite

/** The streaming decision of exact dedup, with hashes forced to collide (SHA-256 never does on its own). */
class ExactDedupSuite extends AnyFunSuite {
  test("the key is the first 128 bits of SHA-256 of the UTF-8 text") {
    val h = ExactDedup.hash128(MessageDigest.getInstance("SHA-256"), "abc")
    // sha256("abc") = ba7816bf8f01cfea414140de5dae2223 b00361a396177a9cb410ff61f20015ad
    assert(h(0) == java.lang.Long.parseUnsignedLong("ba7816bf8f01cfea", 16) && h(1) == java.lang.Long.parseUnsignedLong("414140de5dae2223", 16))
  }

  test("within a hash group sorted by id the first of each text survives; equal hashes with different texts are kept apart") {
    val r = new ExactDedup.Resolver()
    assert(r.offer(1, 1, 10, "a") == -1)
    assert(r.offer(1, 1, 11, "a") == 10)
    assert(r.offer(1, 1, 12, "b") == -1, "a collision: same hash, other text")
    assert(r.offer(1, 1, 13, "b") == 12)
    assert(r.offer(1, 1, 14, "a") == 10)
    assert(r.collisions == 1)
    assert(r.offer(1, 2, 5, "a") == -1, "a new hash group starts afresh")
    assert(r.offer(7, 7, 1, "z") == -1 && r.offer(7, 7, 3, "z") == 1)
    assert(r.collisions == 1)
  }

  test("rows out of id order within a group are refused") {
    val r = new ExactDedup.Resolver()
    r.offer(1, 1, 10, "a")
    assert(intercept[GoslingException](r.offer(1, 1, 9, "a")).getMessage.contains("out of order"))
  }
}
