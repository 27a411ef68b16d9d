"""PyTorch side of TorchInteropSuite (test-only). Runs with Debian's python3-torch.

  check  PTH MANIFEST VALUES [RESAVE]  torch.load(PTH, weights_only=True) and compare with what Java meant to write;
                                       optionally torch.save the result to RESAVE.
  save   PTH MANIFEST VALUES           torch.save a state dict with views, shared storages and a Parameter, and
                                       describe it for Java.
  zipinfo ZIP NAME...                  Python's zipfile: list records, read NAMEs (CRC-checked).

MANIFEST is JSON: [{"name", "dtype": "BF16"|"F16"|"F32", "shape", "offset", "count"}]; VALUES holds float32
little-endian values, tensor after tensor. For "check" they are the values before rounding to the dtype, so that
torch's own rounding is compared with Java's.
"""
import collections
import json
import struct
import sys
import zipfile

DTYPES = {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}


def fail(message):
    print("FAIL " + message)
    sys.exit(1)


def bits(t):
    import torch
    return t.view(torch.int16 if t.element_size() == 2 else torch.int32)


def check(pth, manifest_path, values_path, resave=None):
    import torch
    manifest = json.load(open(manifest_path))
    raw = torch.frombuffer(bytearray(open(values_path, "rb").read()), dtype=torch.float32)
    sd = torch.load(pth, weights_only=True)
    if not isinstance(sd, collections.OrderedDict):
        fail("loaded a %s, not an OrderedDict" % type(sd).__name__)
    names = [m["name"] for m in manifest]
    if list(sd.keys()) != names:
        fail("key order %s != %s" % (list(sd.keys())[:5], names[:5]))
    for m in manifest:
        t = sd[m["name"]]
        dtype = getattr(torch, DTYPES[m["dtype"]])
        if t.dtype != dtype or list(t.shape) != m["shape"] or not t.is_contiguous() or t.requires_grad:
            fail("%s: %s %s contiguous=%s" % (m["name"], t.dtype, list(t.shape), t.is_contiguous()))
        original = raw[m["offset"]:m["offset"] + m["count"]].reshape(m["shape"])
        expected = original.to(dtype)  # torch's rounding of the same float32 values
        nan = torch.isnan(expected)
        if not torch.equal(torch.isnan(t), nan):
            fail("%s: NaN positions differ" % m["name"])
        if not torch.equal(bits(t)[~nan], bits(expected)[~nan]):
            diff = (bits(t) != bits(expected)) & ~nan
            fail("%s: bits differ at %d places, first java=%s torch=%s (from %r)" % (
                m["name"], int(diff.sum()), bits(t)[diff][0].item(), bits(expected)[diff][0].item(),
                original[diff][0].item()))
    if resave:
        torch.save(sd, resave)
    print("OK %d tensors" % len(manifest))


def save(pth, manifest_path, values_path):
    import torch
    g = torch.Generator().manual_seed(1234)
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    wide = (torch.randn(2, 300, generator=g) * 3).to(torch.bfloat16)
    sd = collections.OrderedDict()
    sd["emb.weight"] = (torch.arange(20, dtype=torch.float32).reshape(5, 4) * 0.37 - 3).to(torch.bfloat16)
    sd["view.t"] = base.t()                      # non-contiguous, stride (1, 4)
    sd["view.row"] = base[1]                     # shares base's storage, offset 4
    sd["view.col"] = base[:, 2]                  # offset 2, stride 4
    sd["bf16.slice"] = wide[:, 100:200]          # bf16 view with offset 100, row stride 300
    sd["bf16.whole"] = wide                      # the same storage again, whole
    sd["half"] = torch.tensor([2.0 ** -24, 65504.0, -0.0, float("inf"), 0.1, -3.5], dtype=torch.float16)
    sd["scalar"] = torch.tensor(3.25)
    sd["empty"] = torch.zeros(0, 3, dtype=torch.bfloat16)
    sd["param"] = torch.nn.Parameter(torch.full((2, 2), 1.5))
    sd["big"] = torch.randn(70000, generator=g)
    sd["five.d"] = torch.randn(2, 1, 3, 1, 2, generator=g).to(torch.float16)
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("blocks.0", {"version": 1})])
    torch.save(sd, pth)
    manifest, chunks, offset = [], [], 0
    inverse = {v: k for k, v in DTYPES.items()}
    for name, t in sd.items():
        flat = t.detach().float().contiguous().reshape(-1)
        manifest.append({"name": name, "dtype": inverse[str(t.dtype).replace("torch.", "")],
                         "shape": list(t.shape), "offset": offset, "count": flat.numel()})
        chunks.append(flat)
        offset += flat.numel()
    json.dump(manifest, open(manifest_path, "w"))
    values = torch.cat(chunks).tolist()
    open(values_path, "wb").write(struct.pack("<%df" % len(values), *values))
    print("OK saved %d tensors" % len(sd))


def zipinfo(path, names):
    with zipfile.ZipFile(path) as z:
        infos = [{"name": i.filename, "header_offset": i.header_offset, "size": i.file_size,
                  "stored": i.compress_type == zipfile.ZIP_STORED} for i in z.infolist()]
        contents = {n: z.read(n).decode("ascii") for n in names}
    print(json.dumps({"records": infos, "contents": contents}))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "check":
        check(*args)
    elif command == "save":
        save(*args)
    elif command == "zipinfo":
        zipinfo(args[0], args[1:])
    else:
        fail("unknown command " + command)
