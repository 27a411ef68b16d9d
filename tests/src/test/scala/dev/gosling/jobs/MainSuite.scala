package dev.gosling.jobs

import org.scalatest.funsuite.AnyFunSuite

class MainSuite extends AnyFunSuite {
  test("no command is a usage error, not a crash") {
    assert(Main.execute() == 2)
  }

  test("--help exits 0") {
    assert(Main.execute("--help") == 0)
  }
}
