#!/usr/bin/env python3
"""Convert the IMDN authors' PyTorch checkpoints into imdn-wasm model files (.imdn).

Needs only the Python standard library: no PyTorch. Reads both of PyTorch's formats, the legacy
pickle stream (torch < 1.6, which all official IMDN checkpoints use) and the zip archive of
torch >= 1.6. Unpickling is restricted to the handful of classes a state dict uses, so a hostile
file cannot run code. The output format is described in models/FORMAT.md.

    tools/convert.py IMDN_x4.pth IMDN_x4.imdn            # architecture from the file name
    tools/convert.py --arch rtc my_rtc.pth my_rtc.imdn   # or named explicitly
    tools/convert.py --all CHECKPOINT_DIR OUT_DIR        # every official checkpoint found there
"""
import argparse
import array
import collections
import io
import os
import pickle
import struct
import sys
import zipfile
import zlib

MAGIC = b"IMDNWASM"
VERSION = 1
HEADER_SIZE = 64
DTYPE_F32 = 1

ARCH_IDS = {"imdn": 1, "imdn_as": 2, "imdn_rtc": 3, "imdn_rte": 4}

# Official checkpoints: file name -> (architecture, scale). Used by --all and to guess --arch.
OFFICIAL = {
    "IMDN_x2.pth": ("imdn", 2),
    "IMDN_x3.pth": ("imdn", 3),
    "IMDN_x4.pth": ("imdn", 4),
    "IMDN_AS.pth": ("imdn_as", 1),
    "model_RTC.pth": ("imdn_rtc", 2),
    "model_RTE.pth": ("imdn_rte", 2),
}
OUTPUT_NAMES = {
    "IMDN_x2.pth": "IMDN_x2.imdn",
    "IMDN_x3.pth": "IMDN_x3.imdn",
    "IMDN_x4.pth": "IMDN_x4.imdn",
    "IMDN_AS.pth": "IMDN_AS.imdn",
    "model_RTC.pth": "IMDN_RTC.imdn",
    "model_RTE.pth": "IMDN_RTE.imdn",
}


class ConvertError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Reading PyTorch checkpoints without PyTorch

_STORAGE_DTYPES = {  # torch storage class -> (array typecode, element size)
    "FloatStorage": ("f", 4),
    "DoubleStorage": ("d", 8),
    "HalfStorage": ("e", 2),
    "LongStorage": ("q", 8),
    "IntStorage": ("i", 4),
}


class _StorageType:
    def __init__(self, name):
        if name not in _STORAGE_DTYPES:
            raise ConvertError(f"unsupported tensor storage type torch.{name}")
        self.name = name
        self.typecode, self.itemsize = _STORAGE_DTYPES[name]


class _LazyTensor:
    """A tensor as the pickle describes it; its storage bytes are attached later."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset = storage, offset
        self.size, self.stride = tuple(size), tuple(stride)

    def values(self, storages):
        key, stype = self.storage
        if key not in storages:
            raise ConvertError(f"storage {key} is referenced but missing from the file")
        data = storages[key]
        flat = array.array(stype.typecode)
        flat.frombytes(data)
        if sys.byteorder != "little":
            flat.byteswap()
        count = 1
        for d in self.size:
            count *= d
        out = array.array("f", bytes(4 * count))
        # Gather with arbitrary strides (checkpoints are contiguous, but nothing guarantees it).
        index = [0] * len(self.size)
        for i in range(count):
            pos = self.offset + sum(ix * st for ix, st in zip(index, self.stride))
            if pos >= len(flat):
                raise ConvertError("tensor reaches past the end of its storage")
            out[i] = flat[pos]
            for axis in reversed(range(len(index))):
                index[axis] += 1
                if index[axis] < self.size[axis]:
                    break
                index[axis] = 0
        return out


def _rebuild_tensor_v2(storage, offset, size, stride, *unused):
    return _LazyTensor(storage, offset, size, stride)


def _rebuild_parameter(data, *unused):
    return data


class _SafeUnpickler(pickle.Unpickler):
    """Knows the classes of a state dict and nothing else."""

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name)
        raise ConvertError(f"checkpoint needs {module}.{name}, which a state dict never does; refusing it")

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel[, view_metadata])
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise ConvertError(f"unexpected persistent id {pid!r}")
        stype = pid[1]
        if not isinstance(stype, _StorageType):
            raise ConvertError(f"unexpected storage type {stype!r}")
        return (str(pid[2]), stype)


def _collect_storage_types(obj, out):
    if isinstance(obj, _LazyTensor):
        out[obj.storage[0]] = obj.storage[1]
    elif isinstance(obj, dict):
        for v in obj.values():
            _collect_storage_types(v, out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _collect_storage_types(v, out)


def _load_legacy(blob):
    f = io.BytesIO(blob)
    try:
        magic = pickle.load(f)
        if magic != 0x1950A86A20F9469CFC6C:
            raise ConvertError("not a PyTorch checkpoint (bad magic number)")
        protocol = pickle.load(f)
        if protocol != 1001:
            raise ConvertError(f"unsupported legacy protocol {protocol}")
        sys_info = pickle.load(f)
        if not sys_info.get("little_endian", True):
            raise ConvertError("big-endian checkpoints are not supported")
        obj = _SafeUnpickler(f).load()
        keys = pickle.load(f)
    except ConvertError:
        raise
    except Exception as e:  # truncated or corrupt pickle
        raise ConvertError(f"corrupt legacy checkpoint: {e}") from None
    types = {}
    _collect_storage_types(obj, types)
    storages = {}
    for key in keys:
        key = str(key)
        header = f.read(8)
        if len(header) != 8:
            raise ConvertError(f"checkpoint truncated before storage {key}")
        (count,) = struct.unpack("<q", header)
        stype = types.get(key)
        if stype is None:
            raise ConvertError(f"storage {key} has no tensor")
        nbytes = count * stype.itemsize
        data = f.read(nbytes)
        if count < 0 or len(data) != nbytes:
            raise ConvertError(f"checkpoint truncated inside storage {key}")
        storages[key] = data
    return obj, storages


def _load_zip(path):
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if not pkl:
            raise ConvertError("zip checkpoint has no data.pkl")
        prefix = pkl[0][: -len("data.pkl")]
        try:
            obj = _SafeUnpickler(io.BytesIO(z.read(pkl[0]))).load()
        except ConvertError:
            raise
        except Exception as e:
            raise ConvertError(f"corrupt zip checkpoint: {e}") from None
        types = {}
        _collect_storage_types(obj, types)
        storages = {}
        for key in types:
            name = f"{prefix}data/{key}"
            if name not in names:
                raise ConvertError(f"zip checkpoint lacks {name}")
            storages[key] = z.read(name)
    return obj, storages


def load_state_dict(path):
    """Returns {name: (shape, array('f'))} with any DataParallel 'module.' prefix removed."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == b"PK\x03\x04":
        obj, storages = _load_zip(path)
    else:
        with open(path, "rb") as fh:
            obj, storages = _load_legacy(fh.read())
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ConvertError("checkpoint does not hold a state dict")
    out = collections.OrderedDict()
    for name, t in obj.items():
        if not isinstance(t, _LazyTensor):
            continue
        if name.startswith("module."):
            name = name[len("module."):]
        out[name] = (t.size, t.values(storages))
    return out


# ---------------------------------------------------------------------------------------------
# Architectures: which checkpoint tensor becomes which canonical tensor, with expected shapes.
# Canonical names are what src/model.cpp expects (see models/FORMAT.md).


def _conv(src, dst, cout, cin, k, bias=True):
    items = [(f"{src}.weight", f"{dst}.weight", (cout, cin, k, k))]
    if bias:
        items.append((f"{src}.bias", f"{dst}.bias", (cout,)))
    return items


def architecture(arch, scale):
    """Returns (header fields, [(checkpoint name, canonical name, shape)])."""
    m = []
    if arch in ("imdn", "imdn_as"):
        nf, blocks, d = 64, 6, 16
        r = 4 if arch == "imdn_as" else scale
        if arch == "imdn":
            m += _conv("fea_conv", "stem.0", nf, 3, 3)
        else:
            m += _conv("fea_conv.0", "stem.0", nf, 3, 3) + _conv("fea_conv.2", "stem.1", nf, nf, 3)
        for b in range(blocks):
            p, q = f"IMDB{b + 1}", f"blocks.{b}"
            m += _conv(f"{p}.c1", f"{q}.c1", nf, nf, 3)
            m += _conv(f"{p}.c2", f"{q}.c2", nf, nf - d, 3)
            m += _conv(f"{p}.c3", f"{q}.c3", nf, nf - d, 3)
            m += _conv(f"{p}.c4", f"{q}.c4", d, nf - d, 3)
            m += _conv(f"{p}.cca.conv_du.0", f"{q}.cca.0", nf // 16, nf, 1)
            m += _conv(f"{p}.cca.conv_du.2", f"{q}.cca.1", nf, nf // 16, 1)
            m += _conv(f"{p}.c5", f"{q}.fuse", nf, nf, 1)
        m += _conv("c.0", "fusion", nf, nf * blocks, 1)
        m += _conv("LR_conv", "lr", nf, nf, 3)
        m += _conv("upsampler.0", "up", 3 * r * r, nf, 3)
        # Receptive radius in input pixels: each 3x3 conv adds 1 at its resolution.
        if arch == "imdn":
            radius = 1 + 4 * blocks + 1 + 1
            fields = dict(nf=nf, blocks=blocks, scale=scale, upsample=r, input_range=1.0, multiple=1)
        else:
            # stem at full and half resolution, body at quarter resolution, x4 shuffle
            radius = 1 + 2 + 4 * (4 * blocks + 2) + 3
            fields = dict(nf=nf, blocks=blocks, scale=1, upsample=4, input_range=1.0, multiple=4)
    elif arch == "imdn_rtc":
        nf, blocks, d = 12, 5, 3
        m += _conv("model.0", "stem.0", nf, 3, 3)
        for b in range(blocks):
            p, q = f"model.1.sub.{b}", f"blocks.{b}"
            m += _conv(f"{p}.c1", f"{q}.c1", nf, nf, 3)
            m += _conv(f"{p}.c2", f"{q}.c2", nf, nf - d, 3)
            m += _conv(f"{p}.c3", f"{q}.c3", nf, nf - d, 3)
            m += _conv(f"{p}.c4", f"{q}.c4", d, nf - d, 3)
            m += _conv(f"{p}.c5", f"{q}.fuse", nf, 4 * d, 1)
        m += _conv(f"model.1.sub.{blocks}", "lr", nf, nf, 1)
        m += _conv("model.2", "up", 3 * 4, nf, 3)
        radius = 1 + 4 * blocks + 1
        fields = dict(nf=nf, blocks=blocks, scale=2, upsample=2, input_range=1.0, multiple=1)
    elif arch == "imdn_rte":
        nf, blocks, d = 20, 6, 5
        rem = nf - d
        m += _conv("fea_conv.0", "stem.0", nf, 3, 3)
        m += _conv("fea_conv.2", "stem.1", nf, nf, 3, bias=False)
        for b in range(blocks):
            p, q = f"block{b + 1}", f"blocks.{b}"
            m += _conv(f"{p}.c1", f"{q}.c1", nf, nf, 3, bias=False)
            m += _conv(f"{p}.c2", f"{q}.c2", nf, rem, 3, bias=False)
            m += _conv(f"{p}.c3", f"{q}.c3", nf, rem, 3, bias=False)
            m += _conv(f"{p}.c4", f"{q}.c4", rem, rem, 3, bias=False)
            m += _conv(f"{p}.c5", f"{q}.c5", rem - d, rem - d, 3, bias=False)
            m += _conv(f"{p}.c6", f"{q}.c6", d, d, 3, bias=False)
            m += _conv(f"{p}.c7", f"{q}.fuse", nf, 6 * d, 1, bias=False)
        m += _conv("LR_conv", "lr", nf, nf, 1, bias=False)
        m += _conv("upsampler.0", "up", 3 * 16, nf, 3)
        radius = 1 + 1 + 2 * (6 * blocks + 1) + 1  # stride-2 stem, half-resolution body
        fields = dict(nf=nf, blocks=blocks, scale=2, upsample=4, input_range=255.0, multiple=1)
    else:
        raise ConvertError(f"unknown architecture {arch!r}; known: {', '.join(ARCH_IDS)}")
    fields["arch"] = ARCH_IDS[arch]
    fields["radius"] = radius
    return fields, m


# ---------------------------------------------------------------------------------------------
# Writing our format


def _pad4(buf):
    while len(buf) % 4:
        buf.append(0)


def encode(fields, tensors):
    """tensors: list of (name, shape, array('f'))."""
    payload = bytearray()
    for name, shape, values in tensors:
        raw = name.encode("ascii")
        payload += struct.pack("<H", len(raw)) + raw
        payload += struct.pack("<BB", DTYPE_F32, len(shape))
        payload += struct.pack(f"<{len(shape)}I", *shape)
        while (HEADER_SIZE + len(payload)) % 4:
            payload.append(0)
        data = array.array("f", values)
        if sys.byteorder != "little":
            data.byteswap()
        payload += data.tobytes()
    header = MAGIC + struct.pack(
        "<IIIIIIIfIIIIQ",
        VERSION, HEADER_SIZE, fields["arch"], fields["nf"], fields["blocks"], fields["scale"],
        fields["upsample"], fields["input_range"], fields["radius"], fields["multiple"],
        len(tensors), 0, len(payload))
    assert len(header) == HEADER_SIZE
    body = header + bytes(payload)
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


def convert(path, arch, scale):
    state = load_state_dict(path)
    fields, mapping = architecture(arch, scale)
    expected = {src for src, _, _ in mapping}
    missing = [src for src, _, _ in mapping if src not in state]
    if missing:
        raise ConvertError(f"{path}: not an {arch} x{scale} checkpoint; missing {', '.join(missing[:5])}"
                           + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    extra = [k for k in state if k not in expected]
    if extra:
        raise ConvertError(f"{path}: unexpected tensors for {arch}: {', '.join(extra[:5])}")
    tensors = []
    for src, dst, shape in mapping:
        got, values = state[src]
        if tuple(got) != tuple(shape):
            raise ConvertError(f"{path}: {src} has shape {list(got)}, {arch} x{scale} needs {list(shape)}")
        tensors.append((dst, shape, values))
    return encode(fields, tensors)


def _guess(path):
    base = os.path.basename(path)
    if base in OFFICIAL:
        return OFFICIAL[base]
    raise ConvertError(f"cannot tell the architecture of {base}: pass --arch and --scale")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", help="checkpoint (.pth), or with --all a directory of them")
    ap.add_argument("output", help="model file (.imdn), or with --all a directory")
    ap.add_argument("--arch", choices=sorted(ARCH_IDS), help="architecture (default: from the official file name)")
    ap.add_argument("--scale", type=int, default=None, help="upscaling factor of an imdn checkpoint (2, 3 or 4)")
    ap.add_argument("--all", action="store_true", help="convert every official checkpoint in the input directory")
    ap.add_argument("--if-present", action="store_true", help="with --all: succeed quietly when the directory is absent")
    args = ap.parse_args(argv)
    try:
        if args.all:
            if args.if_present and not os.path.isdir(args.input):
                print(f"convert: {args.input} is absent; nothing to convert")
                return 0
            os.makedirs(args.output, exist_ok=True)
            found = 0
            for name, (arch, scale) in OFFICIAL.items():
                src = os.path.join(args.input, name)
                if not os.path.exists(src):
                    continue
                dst = os.path.join(args.output, OUTPUT_NAMES[name])
                _write(dst, convert(src, arch, scale))
                found += 1
            if not found:
                raise ConvertError(f"no official checkpoint in {args.input}")
        else:
            if args.arch:
                arch, scale = args.arch, args.scale or {"imdn": 4, "imdn_as": 1}.get(args.arch, 2)
            else:
                arch, scale = _guess(args.input)
            _write(args.output, convert(args.input, arch, scale))
    except (ConvertError, OSError) as e:
        print(f"convert: {e}", file=sys.stderr)
        return 1
    return 0


def _write(dst, blob):
    tmp = dst + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(blob)
    os.replace(tmp, dst)
    print(f"wrote {dst} ({len(blob)} bytes)")


if __name__ == "__main__":
    sys.exit(main())
