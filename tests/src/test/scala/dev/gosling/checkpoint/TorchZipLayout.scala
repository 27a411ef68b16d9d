package dev.gosling.checkpoint

import dev.gosling.checkpoint.CheckpointFixtures.LittleEndian

/** An independent reading of a torch zip's bytes (central directory and local headers), for layout assertions. */
object TorchZipLayout {
  final case class Record(name: String, headerOffset: Long, size: Long, crc: Long, flags: Int,
                          localExtra: Array[Byte], dataOffset: Long, centralExtra: Array[Byte])

  final case class Layout(records: Seq[Record], centralOffset: Long, centralSize: Long, zip64EndOffset: Long,
                          eocdEntries: Int, eocdCentralSize: Long, eocdCentralOffset: Long)

  /** Parses the end records (requiring the ZIP64 ones, as torch writes them) and every entry. */
  def parse(b: Array[Byte]): Layout = parseTail(b, b.length.toLong, (off, len) => java.util.Arrays.copyOfRange(b, off.toInt, off.toInt + len))

  /** The same for a file too big for an array: `read(offset, length)` supplies bytes. */
  def parseTail(probe: Array[Byte], size: Long, read: (Long, Int) => Array[Byte]): Layout = {
    val eocd = read(size - 22, 22)
    require(eocd.u32(0) == 0x06054b50L, "EOCD at the very end (torch writes no comment)")
    val locator = read(size - 42, 20)
    require(locator.u32(0) == 0x07064b50L, "ZIP64 locator before the EOCD")
    val z64Offset = locator.u64(8)
    val z64 = read(z64Offset, 56)
    require(z64.u32(0) == 0x06064b50L && z64.u64(4) == 44)
    val count = z64.u64(32).toInt
    val cdSize = z64.u64(40)
    val cdOffset = z64.u64(48)
    val cd = read(cdOffset, cdSize.toInt)
    var p = 0
    val records = (0 until count).map { _ =>
      require(cd.u32(p) == 0x02014b50L)
      val flags = cd.u16(p + 8)
      require(cd.u16(p + 10) == 0, "STORED")
      val crc = cd.u32(p + 16)
      var size = cd.u32(p + 24)
      require(cd.u32(p + 20) == size)
      val nameLen = cd.u16(p + 28)
      val extraLen = cd.u16(p + 30)
      var offset = cd.u32(p + 42)
      val name = cd.ascii(p + 46, nameLen)
      val extra = java.util.Arrays.copyOfRange(cd, p + 46 + nameLen, p + 46 + nameLen + extraLen)
      if (extraLen > 0) {
        require(extra.u16(0) == 1, "only a ZIP64 extra in the central directory")
        var f = 4
        if (size == 0xffffffffL) { size = extra.u64(f); f += 16 }
        if (offset == 0xffffffffL) { offset = extra.u64(f) }
      }
      p += 46 + nameLen + extraLen + cd.u16(p + 32)
      val local = read(offset, 30)
      require(local.u32(0) == 0x04034b50L)
      val localNameLen = local.u16(26)
      val localExtraLen = local.u16(28)
      val localExtra = read(offset + 30 + localNameLen, localExtraLen)
      Record(name, offset, size, crc, flags, localExtra, offset + 30 + localNameLen + localExtraLen, extra)
    }
    Layout(records, cdOffset, cdSize, z64Offset, eocd.u16(10), eocd.u32(12), eocd.u32(16))
  }

  /**
   * torch.load's offset calculation for format version 1 (serialization.py _get_offset with
   * PyTorchStreamReader::getRecordOffsetNoRead and detail::getPadding): from data/0's header, each next storage's
   * data offset is computed, not read. Returns the computed data offsets of data/0, data/1, ...
   */
  def torchComputedStorageOffsets(layout: Layout, archive: String, storageCount: Int): Seq[Long] = {
    val limit = 0xffffffffL
    val first = layout.records.find(_.name == s"$archive/data/0").get
    var cursor = first.headerOffset
    (0 until storageCount).map { i =>
      val rec = layout.records.find(_.name == s"$archive/data/$i").get
      val nameLen = s"$archive/data/$i".length
      var start = cursor + 30 + nameLen + 4
      if (rec.size >= limit || cursor >= limit) {
        start += 4
        if (rec.size >= limit) start += 16
        if (cursor >= limit) start += 8
      }
      val dataOffset = start + (64 - start % 64) % 64
      val headerOffset = cursor
      cursor = dataOffset + rec.size
      if (rec.size > 0) cursor += (if (headerOffset >= limit || rec.size >= limit) 24 else 16)
      dataOffset
    }
  }
}
