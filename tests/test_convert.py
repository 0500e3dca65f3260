"""tools/convert.py: both PyTorch formats, refusal of hostile and broken files, exact tensors."""
import array
import io
import os
import pickle
import struct
import sys
import tempfile
import types
import unittest
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import convert  # noqa: E402

SHARED = os.environ.get("IMDN_SHARED_DIR", os.path.join(HERE, "..", "..", "shared"))
CHECKPOINTS = os.path.join(SHARED, "imdn", "checkpoints")


# Stand-ins for the torch classes a state dict pickles, so tests can write checkpoints without torch.
_torch = types.ModuleType("torch")
_utils = types.ModuleType("torch._utils")


class FloatStorage:
    pass


def _rebuild_tensor_v2(*args):
    raise AssertionError("never called while writing")


FloatStorage.__module__ = "torch"
_rebuild_tensor_v2.__module__ = "torch._utils"
_torch.FloatStorage = FloatStorage
_utils._rebuild_tensor_v2 = _rebuild_tensor_v2


class _FakeTensor:
    def __init__(self, key, shape):
        self.key, self.shape = key, shape

    def __reduce__(self):
        stride, acc = [], 1
        for d in reversed(self.shape):
            stride.insert(0, acc)
            acc *= d
        return (_rebuild_tensor_v2, (("storage", self.key), 0, tuple(self.shape), tuple(stride), False, {}))


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, tuple) and len(obj) == 2 and obj[0] == "storage":
            return ("storage", FloatStorage, obj[1], "cpu", 0)
        return None


def _state_pickle(state):
    with_modules = dict(sys.modules)
    sys.modules["torch"], sys.modules["torch._utils"] = _torch, _utils
    try:
        buf = io.BytesIO()
        import collections
        od = collections.OrderedDict((k, _FakeTensor(str(i), shape)) for i, (k, (shape, _)) in enumerate(state.items()))
        _Pickler(buf, protocol=2).dump(od)
        return buf.getvalue()
    finally:
        sys.modules.clear()
        sys.modules.update(with_modules)


def write_legacy(path, state):
    """state: {name: (shape, list of floats)} -> a torch<1.6 legacy checkpoint."""
    with open(path, "wb") as f:
        for obj in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True,
                                                    "type_sizes": {"short": 2, "int": 4, "long": 4}}):
            pickle.dump(obj, f, protocol=2)
        f.write(_state_pickle(state))
        pickle.dump([str(i) for i in range(len(state))], f, protocol=2)
        for shape, values in state.values():
            f.write(struct.pack("<q", len(values)))
            f.write(array.array("f", values).tobytes())


def write_zip(path, state):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", _state_pickle(state))
        for i, (shape, values) in enumerate(state.values()):
            z.writestr(f"archive/data/{i}", array.array("f", values).tobytes())


def rtc_state(prefix=""):
    _, mapping = convert.architecture("imdn_rtc", 2)
    state = {}
    for n, (src, _, shape) in enumerate(mapping):
        count = 1
        for d in shape:
            count *= d
        state[prefix + src] = (shape, [((n * 31 + i) % 97) / 97.0 - 0.5 for i in range(count)])
    return state


def parse_records(blob):
    """Minimal reader of our format for the tests: {name: (shape, floats)}."""
    assert blob[:8] == b"IMDNWASM"
    assert zlib.crc32(blob[:-4]) & 0xFFFFFFFF == struct.unpack("<I", blob[-4:])[0]
    count = struct.unpack("<I", blob[48:52])[0]
    pos, out = 64, {}
    for _ in range(count):
        (n,) = struct.unpack("<H", blob[pos:pos + 2]); pos += 2
        name = blob[pos:pos + n].decode(); pos += n
        dtype, ndim = blob[pos], blob[pos + 1]; pos += 2
        shape = struct.unpack(f"<{ndim}I", blob[pos:pos + 4 * ndim]); pos += 4 * ndim
        pos = (pos + 3) // 4 * 4
        count_f = 1
        for d in shape:
            count_f *= d
        out[name] = (shape, array.array("f", blob[pos:pos + 4 * count_f]).tolist()); pos += 4 * count_f
    assert pos == len(blob) - 4
    return out


class ConverterTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def _check_rtc(self, blob, state, prefix=""):
        got = parse_records(blob)
        _, mapping = convert.architecture("imdn_rtc", 2)
        self.assertEqual(len(got), len(mapping))
        for src, dst, shape in mapping:
            self.assertEqual(got[dst][0], shape)
            want = array.array("f", state[prefix + src][1]).tolist()
            self.assertEqual(got[dst][1], want, dst)

    def test_legacy_format_with_dataparallel_prefix(self):
        state = rtc_state("module.")
        path = os.path.join(self.dir, "rtc.pth")
        write_legacy(path, state)
        self._check_rtc(convert.convert(path, "imdn_rtc", 2), state, "module.")

    def test_zip_format(self):
        state = rtc_state()
        path = os.path.join(self.dir, "rtc.pth")
        write_zip(path, state)
        self._check_rtc(convert.convert(path, "imdn_rtc", 2), state)

    def test_refuses_code_in_the_pickle(self):
        target = os.path.join(self.dir, "pwned")

        class Evil:
            def __reduce__(self):
                return (os.system, ("echo pwned > " + target,))

        path = os.path.join(self.dir, "evil.pth")
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", pickle.dumps({"x": Evil()}, protocol=2))
        with self.assertRaisesRegex(convert.ConvertError, "refusing"):
            convert.load_state_dict(path)
        self.assertFalse(os.path.exists(target))

    def test_refuses_truncated_checkpoint(self):
        state = rtc_state()
        path = os.path.join(self.dir, "rtc.pth")
        write_legacy(path, state)
        data = open(path, "rb").read()
        for cut in (10, len(data) // 3, len(data) - 5):
            with open(path, "wb") as f:
                f.write(data[:cut])
            with self.assertRaises(convert.ConvertError):
                convert.convert(path, "imdn_rtc", 2)

    def test_refuses_wrong_architecture_or_scale(self):
        state = rtc_state()
        path = os.path.join(self.dir, "rtc.pth")
        write_legacy(path, state)
        with self.assertRaisesRegex(convert.ConvertError, "not an imdn x4 checkpoint"):
            convert.convert(path, "imdn", 4)

    def test_refuses_wrong_shapes(self):
        state = rtc_state()
        shape, values = state["model.2.weight"]
        state["model.2.weight"] = ((48, 12, 3, 3), values * 4)
        path = os.path.join(self.dir, "rtc.pth")
        write_legacy(path, state)
        with self.assertRaisesRegex(convert.ConvertError, r"model.2.weight has shape \[48, 12, 3, 3\]"):
            convert.convert(path, "imdn_rtc", 2)

    @unittest.skipUnless(os.path.isdir(CHECKPOINTS), "no official checkpoints")
    def test_official_checkpoints(self):
        params = {"IMDN_x2.pth": 694404, "IMDN_x3.pth": 703059, "IMDN_x4.pth": 715176,
                  "IMDN_AS.pth": 752104, "model_RTC.pth": 20190, "model_RTE.pth": 89748}
        for name, count in params.items():
            arch, scale = convert.OFFICIAL[name]
            got = parse_records(convert.convert(os.path.join(CHECKPOINTS, name), arch, scale))
            self.assertEqual(sum(len(v) for _, v in got.values()), count, name)
            header = convert.convert(os.path.join(CHECKPOINTS, name), arch, scale)[:64]
            rng = struct.unpack("<f", header[36:40])[0]
            self.assertEqual(rng, 255.0 if arch == "imdn_rte" else 1.0, name)


if __name__ == "__main__":
    unittest.main()
