/**
 * The files of the MicroPython-shaped fixture repository (see fixture-micropython.ts). The tools are
 * small Python programs that behave like MicroPython's where mp can tell: Makefiles that honour
 * BOARD / BOARD_VARIANT / VARIANT / BUILD / FROZEN_MANIFEST / MICROPY_MPYCROSS, `make submodules`
 * printing "Updating submodules: …", a manifest tool with include/package/module/require/freeze,
 * an mpy-cross that reports syntax errors as the real one does, make-level incrementality (only
 * changed modules are recompiled) and images in the real formats at the real paths.
 */

export interface FixtureVersion {
  major: number;
  minor: number;
  micro: number;
  prerelease: boolean;
}

const MKENV = `# Fixture of MicroPython's py/mkenv.mk
ifneq ($(lastword a b),b)
$(error These Makefiles require make 3.81 or newer)
endif
THIS_MAKEFILE := $(lastword $(MAKEFILE_LIST))
TOP := $(patsubst %/py/mkenv.mk,%,$(THIS_MAKEFILE))
BUILD ?= build
PYTHON ?= python3
ECHO = @echo
ifeq ("$(origin V)", "command line")
BUILD_VERBOSE=$(V)
endif
ifeq ($(BUILD_VERBOSE),1)
Q =
else
Q = @
endif
MAKE_MANIFEST = $(PYTHON) $(TOP)/tools/makemanifest.py
MPY_LIB_SUBMODULE_DIR = $(TOP)/lib/micropython-lib
MPY_LIB_DIR = $(MPY_LIB_SUBMODULE_DIR)

ifeq ($(MICROPY_MPYCROSS),)
MICROPY_MPYCROSS = $(TOP)/mpy-cross/build/mpy-cross
MICROPY_MPYCROSS_DEPENDENCY = $(MICROPY_MPYCROSS)
endif

all:
.PHONY: all

.DELETE_ON_ERROR:
`;

const PYMK = `# Fixture of py/py.mk: the core "C" sources, compiled by tools/cc.py.
PY_SRC_C := $(sort $(wildcard $(TOP)/py/*.c))
PY_O := $(patsubst $(TOP)/%.c,$(BUILD)/%.o,$(PY_SRC_C))

$(BUILD)/py/%.o: $(TOP)/py/%.c
	$(ECHO) "CC $(patsubst $(TOP)/%,../../%,$<)"
	@mkdir -p $(dir $@)
	$(Q)$(PYTHON) $(TOP)/tools/cc.py $< $@
`;

const MKRULES = `# Fixture of py/mkrules.mk
ifneq ($(FROZEN_MANIFEST),)
# If we're using the default submodule path for micropython-lib, then make
# sure it's included in "make submodules".
ifeq ($(MPY_LIB_DIR),$(MPY_LIB_SUBMODULE_DIR))
GIT_SUBMODULES += lib/micropython-lib
endif

MICROPY_MANIFEST_MPY_LIB_DIR = $(MPY_LIB_DIR)
MICROPY_MANIFEST_PORT_DIR = $(shell pwd)
MICROPY_MANIFEST_BOARD_DIR = $(BOARD_DIR)
MICROPY_MANIFEST_MPY_DIR = $(TOP)
MANIFEST_VARIABLES = $(foreach var,$(filter MICROPY_MANIFEST_%, $(.VARIABLES)),-v "$(subst MICROPY_MANIFEST_,,$(var))=$($(var))")

$(BUILD)/frozen_content.bin: FORCE | $(MICROPY_MPYCROSS_DEPENDENCY)
	$(Q)test -e "$(MPY_LIB_DIR)/README.md" || (echo "Error: micropython-lib submodule is not initialized. Run 'make submodules'"; false)
	$(Q)$(MAKE_MANIFEST) -o $@ $(MANIFEST_VARIABLES) -b "$(BUILD)" $(FROZEN_MANIFEST)
else
$(BUILD)/frozen_content.bin:
	@mkdir -p $(BUILD)
	$(Q)$(PYTHON) -c "open('$@', 'wb').write(b'MPFZ\\\\0\\\\0\\\\0\\\\0')"
endif

ifneq ($(MICROPY_MPYCROSS_DEPENDENCY),)
$(MICROPY_MPYCROSS_DEPENDENCY):
	$(MAKE) -C $(abspath $(dir $@)..)
endif

submodules:
	$(ECHO) "Updating submodules: $(GIT_SUBMODULES)"
ifneq ($(GIT_SUBMODULES),)
	$(Q)cd $(TOP) && git submodule sync $(GIT_SUBMODULES)
	$(Q)cd $(TOP) && git submodule update --init $(GIT_SUBMODULES)
endif
.PHONY: submodules FORCE
FORCE:

clean:
	$(RM) -rf $(BUILD)
.PHONY: clean
`;

const MPY_CROSS_MAKEFILE = `# Fixture of mpy-cross/Makefile
include ../py/mkenv.mk

PROG = mpy-cross

include $(TOP)/py/py.mk

all: $(BUILD)/$(PROG)

$(BUILD)/$(PROG): main.py $(PY_O)
	$(ECHO) "LINK $@"
	@mkdir -p $(BUILD)
	$(Q)cp main.py $@ && chmod +x $@

include $(TOP)/py/mkrules.mk
`;

/** The fixture mpy-cross: checks the syntax (CPython's parser) and writes a .mpy carrying the source. */
const MPY_CROSS_MAIN = `#!/usr/bin/env python3
# Fixture mpy-cross. Usage as the real one: mpy-cross [-o out.mpy] [-s source-name] [-O<n>] [-march=..] [-X ..] file.py
# A module containing "__fixture_sleep__ = <seconds>" sleeps that long first (tests of cancellation).
import os, re, sys, time

def main(argv):
    out = None
    source_name = None
    files = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "-o":
            out = argv[i + 1]; i += 2; continue
        if a == "-s":
            source_name = argv[i + 1]; i += 2; continue
        if a == "--version":
            print("MicroPython fixture mpy-cross emitting mpy v6.3"); return 0
        if a.startswith("-O") or a.startswith("-march") or a.startswith("-msmall-int-bits") or a == "-X":
            i += 2 if a == "-X" else 1; continue
        if a.startswith("-"):
            print("mpy-cross: unknown option " + a, file=sys.stderr); return 2
        files.append(a); i += 1
    if len(files) != 1:
        print("usage: mpy-cross [<opts>] <input filename>", file=sys.stderr)
        return 1
    src = files[0]
    name = source_name or src
    with open(src, "rb") as f:
        data = f.read()
    m = re.search(rb"__fixture_sleep__\\s*=\\s*([0-9.]+)", data)
    if m:
        time.sleep(float(m.group(1)))
    try:
        compile(data, name, "exec", dont_inherit=True)
    except SyntaxError as e:
        # The real mpy-cross prints the exception like MicroPython does, and exits 1.
        print("Traceback (most recent call last):", file=sys.stderr)
        print('  File "%s", line %d' % (name, e.lineno or 1), file=sys.stderr)
        print("SyntaxError: invalid syntax", file=sys.stderr)
        return 1
    if out is None:
        out = src[:-3] + ".mpy" if src.endswith(".py") else src + ".mpy"
    encoded = name.encode()
    with open(out, "wb") as f:
        f.write(b"M\\x06\\x00\\x1f" + len(encoded).to_bytes(2, "little") + encoded + data)
    return 0

sys.exit(main(sys.argv[1:]))
`;

/** Deterministic "object code" with the statistics of machine code (compresses to ~60 %). */
const CC_PY = `#!/usr/bin/env python3
# Fixture C compiler: tools/cc.py src.c out.o. The object depends only on the source's content.
import hashlib, sys
src, out = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
seed = hashlib.sha256(data).digest()
size = 16384 + int.from_bytes(seed[:2], "little") % 16384
idioms = [hashlib.sha256(b"idiom" + bytes([i])).digest()[: 6 + i % 10] for i in range(256)]
buf = bytearray()
state = seed
n = 0
while len(buf) < size:
    state = hashlib.sha256(state).digest()
    for b in state[:8]:
        if b < 150:
            buf += idioms[b]
        else:
            buf += state[8:8 + (b % 12)]
    n += 1
with open(out, "wb") as f:
    f.write(bytes(buf[:size]))
`;

/** Links objects and frozen content into a simple ELF stand-in: a section table then the sections. */
const LINK_PY = `#!/usr/bin/env python3
# Fixture linker: tools/link.py out.elf obj... frozen_content.bin
# Code first (large, stable), frozen content last: a module change touches only the image's tail.
import sys
out, inputs = sys.argv[1], sys.argv[2:]
code = b"".join(open(p, "rb").read() for p in inputs if not p.endswith("frozen_content.bin"))
frozen = b"".join(open(p, "rb").read() for p in inputs if p.endswith("frozen_content.bin"))
with open(out, "wb") as f:
    f.write(b"\\x7fELF-FIXTURE\\0" + len(code).to_bytes(4, "little") + len(frozen).to_bytes(4, "little"))
    f.write(code)
    f.write(frozen)
`;

/** Real image formats: ESP8266 v1 image + irom0, ESP32 bootloader/partitions/app as makeimg.py lays them out. */
const IMAGE_PY = `#!/usr/bin/env python3
# Fixture image tool: tools/fixture_image.py <kind> ...
import hashlib, struct, sys

def read_elf(path):
    data = open(path, "rb").read()
    assert data[:13] == b"\\x7fELF-FIXTURE\\0", "not a fixture ELF: " + path
    code_len, frozen_len = struct.unpack_from("<II", data, 13)
    code = data[21:21 + code_len]
    frozen = data[21 + code_len:21 + code_len + frozen_len]
    return code, frozen

def checksum(segments):
    c = 0xEF
    for _, data in segments:
        for b in data:
            c ^= b
    return c

def pad4(data):
    return data + b"\\0" * (-len(data) % 4)

def esp8266_image(code):
    # ROM-loaded part: iram (.text), dram (.data), dram (.rodata); entry in iram.
    iram = pad4(code[:0x6000])
    data = pad4(hashlib.sha256(code).digest() * 8)
    rodata = pad4(code[0x6000:0x7000])
    segments = [(0x40100000, iram), (0x3FFE8000, data), (0x3FFE8000 + len(data), rodata)]
    # magic, segment count, flash mode (dio=2), size/freq (4MB=0x4 << 4 | 40m=0x0), entry
    out = bytearray(struct.pack("<BBBBI", 0xE9, len(segments), 2, 0x40, 0x40100004))
    for addr, seg in segments:
        out += struct.pack("<II", addr, len(seg)) + seg
    out += b"\\0" * (15 - len(out) % 16)
    out.append(checksum(segments))
    return bytes(out)

def esp32_image(segments, entry, chip_id=0, hash_appended=True):
    out = bytearray(struct.pack("<BBBBI", 0xE9, len(segments), 2, 0x20, entry))
    # extended header: wp pin, drive settings x3, chip id, min rev, min/max full rev, reserved, hash flag
    out += struct.pack("<BBBBHBHHIB", 0xEE, 0, 0, 0, chip_id, 0, 0, 0xFFFF, 0, 1 if hash_appended else 0)
    out += b"\\0" * (24 - len(out))
    for addr, seg in segments:
        seg = pad4(seg)
        out += struct.pack("<II", addr, len(seg)) + seg
    out += b"\\0" * (15 - len(out) % 16)
    out.append(checksum([(a, pad4(s)) for a, s in segments]))
    if hash_appended:
        out += hashlib.sha256(bytes(out)).digest()
    return bytes(out)

def partition_table():
    entries = [
        (b"nvs", 1, 0x02, 0x9000, 0x6000),
        (b"phy_init", 1, 0x01, 0xF000, 0x1000),
        (b"factory", 0, 0x00, 0x10000, 0x1F0000),
        (b"vfs", 1, 0x81, 0x200000, 0x200000),
    ]
    out = bytearray()
    for name, ptype, subtype, offset, size in entries:
        out += struct.pack("<2sBBII16sI", b"\\xAA\\x50", ptype, subtype, offset, size, name.ljust(16, b"\\0"), 0)
    out += b"\\xEB\\xEB" + b"\\xFF" * 14 + hashlib.md5(bytes(out)).digest()
    out += b"\\xFF" * (0xC00 - len(out))
    return bytes(out)

def main(kind, *args):
    if kind == "esp8266":
        elf, out = args
        code, frozen = read_elf(elf)
        image = esp8266_image(code)
        assert len(image) <= 0x9000
        # makeimg.py: the ROM-loaded image at 0x0, padded to 0x9000, then irom0 (code + frozen content).
        with open(out, "wb") as f:
            f.write(image + b"\\xFF" * (0x9000 - len(image)) + code[0x7000:] + frozen)
    elif kind == "esp32-bootloader":
        (out,) = args
        code = hashlib.sha256(b"bootloader").digest() * 600
        with open(out, "wb") as f:
            f.write(esp32_image([(0x3FFF0030, code[:0x2000]), (0x40078000, code[0x2000:])], 0x40080400))
    elif kind == "esp32-partitions":
        (out,) = args
        with open(out, "wb") as f:
            f.write(partition_table())
    elif kind == "esp32-app":
        elf, out = args
        code, frozen = read_elf(elf)
        segments = [(0x3F400020, code[:0x8000]), (0x3FFBDB60, code[0x8000:0x9000]), (0x400D0020, code[0x9000:] + frozen)]
        with open(out, "wb") as f:
            f.write(esp32_image(segments, 0x40081000))
    elif kind == "esp32-combine":
        bootloader, partitions, app, out = args
        # makeimg.py: bootloader at 0x1000, partition table at 0x8000, application at 0x10000; file starts at 0x1000.
        parts = [(0x1000, open(bootloader, "rb").read()), (0x8000, open(partitions, "rb").read()), (0x10000, open(app, "rb").read())]
        data = bytearray()
        for offset, blob in parts:
            data += b"\\xFF" * (offset - 0x1000 - len(data))
            data += blob
        with open(out, "wb") as f:
            f.write(data)
    elif kind == "unix":
        frozen, runtime, out = args
        blob = open(frozen, "rb").read()
        with open(runtime) as f:
            program = f.read()
        with open(out, "w") as f:
            f.write(program.replace("@FROZEN@", blob.hex()))
        import os
        os.chmod(out, 0o755)
    else:
        raise SystemExit("unknown kind " + kind)

main(*sys.argv[1:])
`;

/** The unix "executable": a Python program that imports the frozen modules, like the real port's. */
function unixRuntime(v: FixtureVersion): string {
  return `#!/usr/bin/env python3
# Fixture of MicroPython's unix port executable: runs Python with the frozen modules importable.
import importlib.abc, importlib.util, sys

FROZEN = bytes.fromhex("@FROZEN@")
VERSION = "v${v.major}.${v.minor}.${v.micro}${v.prerelease ? '-preview' : ''}"

def frozen_modules():
    mods = {}
    assert FROZEN[:4] == b"MPFZ"
    count = int.from_bytes(FROZEN[4:8], "little")
    at = 8
    for _ in range(count):
        n = int.from_bytes(FROZEN[at:at + 2], "little"); at += 2
        name = FROZEN[at:at + n].decode(); at += n
        size = int.from_bytes(FROZEN[at:at + 4], "little"); at += 4
        mpy = FROZEN[at:at + size]; at += size
        src_len = int.from_bytes(mpy[4:6], "little")
        mods[name] = mpy[6 + src_len:]
    return mods

MODULES = frozen_modules()

class FrozenFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        rel = fullname.replace(".", "/")
        if rel + "/__init__.py" in MODULES:
            spec = importlib.util.spec_from_loader(fullname, self, is_package=True)
            spec.submodule_search_locations = []
            return spec
        if rel + ".py" in MODULES:
            return importlib.util.spec_from_loader(fullname, self)
        return None
    def exec_module(self, module):
        rel = module.__name__.replace(".", "/")
        key = rel + "/__init__.py" if rel + "/__init__.py" in MODULES else rel + ".py"
        module.__file__ = key
        exec(compile(MODULES[key], key, "exec"), module.__dict__)

sys.meta_path.insert(0, FrozenFinder())
args = sys.argv[1:]
if not args:
    print("MicroPython " + VERSION + " on fixture; unix port with " + str(len(MODULES)) + " frozen modules")
elif args[0] == "-c":
    exec(compile(args[1], "<stdin>", "exec"), {"__name__": "__main__"})
elif args[0] == "-m":
    import runpy
    runpy.run_module(args[1], run_name="__main__")
else:
    with open(args[0]) as f:
        exec(compile(f.read(), args[0], "exec"), {"__name__": "__main__"})
`;
}

/** makemanifest.py with MicroPython's manifest API and the same messages. */
const MAKEMANIFEST = `#!/usr/bin/env python3
# Fixture of tools/makemanifest.py: same arguments, same manifest API, same messages.
import argparse, os, re, subprocess, sys

VARS = {}

class ManifestFileError(Exception):
    pass

class Manifest:
    def __init__(self):
        self.files = {}
        self.stack = []
        self.libraries = {}

    def subst(self, path):
        def repl(m):
            if m.group(1) not in VARS:
                raise ManifestFileError("undefined variable " + m.group(1))
            return VARS[m.group(1)]
        return re.sub(r"\\$\\((\\w+)\\)", repl, path)

    def resolve(self, path):
        path = self.subst(path)
        if not os.path.isabs(path):
            path = os.path.join(self.stack[-1], path)
        return os.path.normpath(path)

    def add(self, full, target, opt):
        if not os.path.isfile(full):
            raise ManifestFileError("file not found: " + full)
        self.files[target] = (full, opt)

    def execute(self, manifest):
        manifest = self.resolve(manifest) if self.stack else os.path.abspath(self.subst(manifest))
        if os.path.isdir(manifest):
            manifest = os.path.join(manifest, "manifest.py")
        if not os.path.isfile(manifest):
            raise ManifestFileError("manifest not found: " + manifest)
        self.stack.append(os.path.dirname(manifest))
        env = {
            "include": self.include, "package": self.package, "module": self.module,
            "require": self.require, "freeze": self.freeze, "metadata": lambda **kw: None,
            "add_library": self.add_library, "options": type("O", (), {"get": lambda s, k, d=None: d})(),
        }
        try:
            with open(manifest) as f:
                exec(compile(f.read(), manifest, "exec"), env)
        except ManifestFileError:
            raise
        except Exception as e:
            raise ManifestFileError("%s: %s" % (type(e).__name__, e))
        finally:
            self.stack.pop()

    def include(self, manifest_path, **kwargs):
        if isinstance(manifest_path, (list, tuple)):
            for m in manifest_path:
                self.include(m)
            return
        self.execute(manifest_path)

    def package(self, package_path, files=None, base_path=".", opt=None):
        base = self.resolve(base_path)
        root = os.path.join(base, package_path)
        if files is None:
            for dirpath, _, names in sorted(os.walk(root)):
                for name in sorted(names):
                    if name.endswith(".py"):
                        full = os.path.join(dirpath, name)
                        self.add(full, os.path.relpath(full, base), opt)
        else:
            for name in files:
                self.add(os.path.join(root, name), os.path.join(package_path, name), opt)

    def module(self, module_path, base_path=".", opt=None):
        base = self.resolve(base_path)
        self.add(os.path.join(base, module_path), module_path, opt)

    def freeze(self, path, script=None, opt=None):
        root = self.resolve(path)
        if script is None:
            for dirpath, _, names in sorted(os.walk(root)):
                for name in sorted(names):
                    if name.endswith(".py"):
                        full = os.path.join(dirpath, name)
                        self.add(full, os.path.relpath(full, root), opt)
        elif isinstance(script, str):
            self.add(os.path.join(root, script), script, opt)
        else:
            for s in script:
                self.add(os.path.join(root, s), s, opt)

    def add_library(self, library, library_path, prepend=False):
        self.libraries[library] = self.resolve(library_path)

    def require(self, name, version=None, unix_ffi=False, pypi=None, library=None, **kwargs):
        roots = [self.libraries[library]] if library else [os.path.join(VARS["MPY_LIB_DIR"], d) for d in ("python-stdlib", "python-ecosys", "micropython")]
        for root in roots:
            for dirpath, dirnames, names in sorted(os.walk(root)):
                if os.path.basename(dirpath) == name and "manifest.py" in names:
                    self.execute(os.path.join(dirpath, "manifest.py"))
                    return
        raise ManifestFileError("package {} not found".format(name))

def get_timestamp(path, default=None):
    try:
        return os.stat(path).st_mtime
    except OSError:
        if default is None:
            raise
        return default

def main():
    p = argparse.ArgumentParser(description="A tool to generate frozen content in MicroPython firmware images.")
    p.add_argument("-o", "--output")
    p.add_argument("-b", "--build-dir")
    p.add_argument("-f", "--mpy-cross-flags", default="")
    p.add_argument("-v", "--var", action="append", default=[])
    p.add_argument("--mpy-tool-flags", default="")
    p.add_argument("files", nargs="+")
    args = p.parse_args()
    for var in args.var:
        name, value = var.split("=", 1)
        if os.path.exists(value):
            value = os.path.abspath(value)
        VARS[name] = value
    if "MPY_DIR" not in VARS or "PORT_DIR" not in VARS:
        print("MPY_DIR and PORT_DIR variables must be specified")
        sys.exit(1)
    mpy_cross = os.getenv("MICROPY_MPYCROSS", VARS["MPY_DIR"] + "/mpy-cross/build/mpy-cross")
    if not os.path.exists(mpy_cross):
        print("mpy-cross not found at {}, please build it first".format(mpy_cross))
        sys.exit(1)
    manifest = Manifest()
    for input_manifest in args.files:
        try:
            manifest.execute(input_manifest)
        except ManifestFileError as er:
            print('freeze error executing "{}": {}'.format(input_manifest, er.args[0]))
            sys.exit(1)
    mpy_files = []
    ts_newest = get_timestamp(args.files[0], 0)
    for target in sorted(manifest.files):
        full, opt = manifest.files[target]
        outfile = "{}/frozen_mpy/{}.mpy".format(args.build_dir, target[:-3])
        ts_outfile = get_timestamp(outfile, 0)
        if get_timestamp(full) >= ts_outfile:
            print("MPY", target, flush=True)
            os.makedirs(os.path.dirname(outfile), exist_ok=True)
            cmd = [mpy_cross, "-o", outfile, "-s", target] + (["-O{}".format(opt)] if opt is not None else []) + args.mpy_cross_flags.split()
            result = subprocess.run(cmd + [full], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if result.returncode != 0:
                print("error compiling {}:".format(target))
                print(result.stdout.decode().rstrip())
                raise SystemExit(1)
            ts_outfile = get_timestamp(outfile)
        mpy_files.append((target, outfile))
        ts_newest = max(ts_newest, ts_outfile)
    # The list of modules is part of the output: a removed module must regenerate it too.
    listing = "\\n".join(t for t, _ in mpy_files)
    listing_file = args.output + ".list"
    try:
        previous = open(listing_file).read()
    except OSError:
        previous = None
    if previous == listing and ts_newest < get_timestamp(args.output, 0):
        return
    out = bytearray(b"MPFZ" + len(mpy_files).to_bytes(4, "little"))
    for target, outfile in mpy_files:
        data = open(outfile, "rb").read()
        out += len(target).to_bytes(2, "little") + target.encode() + len(data).to_bytes(4, "little") + data
    print("GEN", args.output)
    with open(args.output, "wb") as f:
        f.write(out)
    with open(listing_file, "w") as f:
        f.write(listing)

if __name__ == "__main__":
    main()
`;

function portCommon(firmwareRules: string): string {
  return `include $(TOP)/py/py.mk

PORT_SRC_C := $(sort $(wildcard *.c))
PORT_O := $(addprefix $(BUILD)/,$(PORT_SRC_C:.c=.o))
OBJ = $(PY_O) $(PORT_O)

$(BUILD)/%.o: %.c
	$(ECHO) "CC $<"
	@mkdir -p $(dir $@)
	$(Q)$(PYTHON) $(TOP)/tools/cc.py $< $@

${firmwareRules}
include $(TOP)/py/mkrules.mk
`;
}

const ESP8266_MAKEFILE =
  `# Fixture of ports/esp8266/Makefile
BOARD ?= ESP8266_GENERIC
BOARD_DIR ?= boards/$(BOARD)
ifeq ($(wildcard $(BOARD_DIR)/.),)
$(error Invalid BOARD specified: $(BOARD_DIR))
endif

ifdef BOARD_VARIANT
BUILD ?= build-$(BOARD)-$(BOARD_VARIANT)
else
BUILD ?= build-$(BOARD)
endif

include ../../py/mkenv.mk
-include $(BOARD_DIR)/mpconfigboard.mk

FROZEN_MANIFEST ?= boards/manifest.py
GIT_SUBMODULES += lib/axtls lib/berkeley-db-1.xx

# As the real port: the manifest path is recorded, and a different one rebuilds everything.
CONFVARS_FILE = $(BUILD)/confvars
ifeq ($(wildcard $(CONFVARS_FILE)),)
$(shell mkdir -p $(BUILD) && echo $(FROZEN_MANIFEST) $(BOARD_VARIANT) > $(CONFVARS_FILE))
else ifneq ($(shell cat $(CONFVARS_FILE)), $(strip $(FROZEN_MANIFEST) $(BOARD_VARIANT)))
$(shell echo $(FROZEN_MANIFEST) $(BOARD_VARIANT) > $(CONFVARS_FILE))
endif

all: $(BUILD)/firmware.bin

` +
  portCommon(`$(OBJ): $(CONFVARS_FILE)

$(BUILD)/firmware.elf: $(OBJ) $(BUILD)/frozen_content.bin
	$(ECHO) "LINK $@"
	$(Q)$(PYTHON) $(TOP)/tools/link.py $@ $^

$(BUILD)/firmware.bin: $(BUILD)/firmware.elf
	$(ECHO) "Create $@"
	$(Q)$(PYTHON) $(TOP)/tools/fixture_image.py esp8266 $< $@
`);

const ESP32_MAKEFILE =
  `# Fixture of ports/esp32/Makefile (the real one drives ESP-IDF's CMake)
BOARD ?= ESP32_GENERIC
BOARD_DIR ?= boards/$(BOARD)
ifeq ($(wildcard $(BOARD_DIR)/.),)
$(error Invalid BOARD specified: $(BOARD_DIR))
endif

ifdef BOARD_VARIANT
BUILD ?= build-$(BOARD)-$(BOARD_VARIANT)
else
BUILD ?= build-$(BOARD)
endif

include ../../py/mkenv.mk

FROZEN_MANIFEST ?= boards/manifest.py
GIT_SUBMODULES += lib/berkeley-db-1.xx

all: $(BUILD)/firmware.bin

` +
  portCommon(`$(BUILD)/bootloader/bootloader.bin:
	@mkdir -p $(dir $@)
	$(ECHO) "Create $@"
	$(Q)$(PYTHON) $(TOP)/tools/fixture_image.py esp32-bootloader $@

$(BUILD)/partition_table/partition-table.bin: partitions.csv
	@mkdir -p $(dir $@)
	$(ECHO) "Create $@"
	$(Q)$(PYTHON) $(TOP)/tools/fixture_image.py esp32-partitions $@

$(BUILD)/micropython.elf: $(OBJ) $(BUILD)/frozen_content.bin
	$(ECHO) "LINK $@"
	$(Q)$(PYTHON) $(TOP)/tools/link.py $@ $^

$(BUILD)/micropython.bin: $(BUILD)/micropython.elf
	$(ECHO) "Create $@"
	$(Q)$(PYTHON) $(TOP)/tools/fixture_image.py esp32-app $< $@

$(BUILD)/firmware.bin: $(BUILD)/bootloader/bootloader.bin $(BUILD)/partition_table/partition-table.bin $(BUILD)/micropython.bin
	$(ECHO) "Create $@"
	$(Q)$(PYTHON) $(TOP)/tools/fixture_image.py esp32-combine $^ $@
`);

const UNIX_MAKEFILE =
  `# Fixture of ports/unix/Makefile
ifdef VARIANT_DIR
VARIANT ?= $(notdir $(VARIANT_DIR:/=))
else
VARIANT ?= standard
VARIANT_DIR ?= variants/$(VARIANT)
endif
ifeq ($(wildcard $(VARIANT_DIR)/.),)
$(error Invalid VARIANT specified: $(VARIANT_DIR))
endif

BUILD ?= build-$(VARIANT)

include ../../py/mkenv.mk
include $(VARIANT_DIR)/mpconfigvariant.mk

FROZEN_MANIFEST ?= variants/manifest.py
PROG ?= micropython
GIT_SUBMODULES += lib/berkeley-db-1.xx

all: $(BUILD)/$(PROG)

` +
  portCommon(`$(BUILD)/$(PROG): $(OBJ) $(BUILD)/frozen_content.bin runtime.py
	$(ECHO) "LINK $@"
	$(Q)$(PYTHON) $(TOP)/tools/fixture_image.py unix $(BUILD)/frozen_content.bin runtime.py $@
`);

/** A few fake C sources: their content decides the "object code". */
function cSources(prefix: string, names: string[], v: FixtureVersion): Record<string, string> {
  const files: Record<string, string> = {};
  for (const name of names) {
    files[`${prefix}/${name}.c`] =
      `// Fixture source ${prefix}/${name}.c (MicroPython ${v.major}.${v.minor}.${v.micro})\n#include "py/mpconfig.h"\n\nint ${name.replace(/\W/g, '_')}_fixture(void) { return ${v.minor * 100 + v.micro}; }\n`;
  }
  return files;
}

/** Every file of the fixture MicroPython at one version. */
export function micropythonFiles(v: FixtureVersion): Record<string, string> {
  const version = `${v.major}.${v.minor}.${v.micro}`;
  return {
    'README.md': `# MicroPython (mp test fixture)\n\nA stand-in with MicroPython's layout, make interface and image formats, ${version}.\n`,
    'py/mpconfig.h': `// Fixture of py/mpconfig.h\n#define MICROPY_VERSION_MAJOR ${v.major}\n#define MICROPY_VERSION_MINOR ${v.minor}\n#define MICROPY_VERSION_MICRO ${v.micro}\n#define MICROPY_VERSION_PRERELEASE ${v.prerelease ? 1 : 0}\n`,
    'py/mkenv.mk': MKENV,
    'py/py.mk': PYMK,
    'py/mkrules.mk': MKRULES,
    ...cSources(
      'py',
      ['runtime', 'compile', 'emitbc', 'gc', 'obj', 'objstr', 'parse', 'lexer', 'vm', 'builtinimport'],
      v,
    ),
    'mpy-cross/Makefile': MPY_CROSS_MAKEFILE,
    'mpy-cross/main.py': MPY_CROSS_MAIN,
    'tools/makemanifest.py': MAKEMANIFEST,
    'tools/cc.py': CC_PY,
    'tools/link.py': LINK_PY,
    'tools/fixture_image.py': IMAGE_PY,
    'extmod/asyncio/manifest.py': 'package("asyncio", ("__init__.py", "core.py"), base_path="..", opt=3)\n',
    'extmod/asyncio/__init__.py': `# Fixture asyncio\nfrom .core import *\n`,
    'extmod/asyncio/core.py': `# Fixture asyncio core\n\ndef run(coro):\n    try:\n        coro.send(None)\n    except StopIteration as e:\n        return e.value\n\n\ndef sleep_ms(ms):\n    return None\n`,
    // esp8266
    'ports/esp8266/Makefile': ESP8266_MAKEFILE,
    ...cSources('ports/esp8266', ['main', 'modmachine', 'esp_mphal'], v),
    'ports/esp8266/boards/ESP8266_GENERIC/mpconfigboard.mk': '# Fixture board\n',
    'ports/esp8266/boards/ESP8266_GENERIC/manifest_2MiB.py':
      '# base modules\ninclude("$(PORT_DIR)/boards/manifest.py")\n\n# asyncio\ninclude("$(MPY_DIR)/extmod/asyncio")\n\n# micropython-lib: umqtt\nrequire("umqtt.simple")\n',
    'ports/esp8266/boards/manifest.py': 'freeze("$(PORT_DIR)/modules")\n',
    'ports/esp8266/modules/_boot.py':
      'import gc\ngc.threshold((gc.mem_free() + gc.mem_alloc()) // 4)\nimport inisetup\n',
    'ports/esp8266/modules/flashbdev.py': 'class FlashBdev:\n    SEC_SIZE = 4096\n\n\nbdev = FlashBdev()\n',
    'ports/esp8266/modules/inisetup.py': 'def setup():\n    print("Performing initial setup")\n',
    // esp32
    'ports/esp32/Makefile': ESP32_MAKEFILE,
    ...cSources('ports/esp32', ['main', 'modmachine', 'mphalport'], v),
    'ports/esp32/partitions.csv':
      '# Name, Type, SubType, Offset, Size\nnvs, data, nvs, 0x9000, 0x6000\nphy_init, data, phy, 0xf000, 0x1000\nfactory, app, factory, 0x10000, 0x1F0000\nvfs, data, fat, 0x200000, 0x200000\n',
    'ports/esp32/boards/ESP32_GENERIC/mpconfigboard.cmake': '# Fixture board\n',
    'ports/esp32/boards/manifest.py': 'freeze("$(PORT_DIR)/modules")\ninclude("$(MPY_DIR)/extmod/asyncio")\n',
    'ports/esp32/modules/_boot.py': 'import gc\nimport vfs\n',
    'ports/esp32/modules/inisetup.py': 'def setup():\n    print("Performing initial setup")\n',
    'ports/esp32/lockfiles/dependencies.lock.esp32': `dependencies:\n  idf:\n    source:\n      type: idf\n    version: 5.5.1\nmanifest_hash: fixture\ntarget: esp32\nversion: 2.0.0\n`,
    // unix
    'ports/unix/Makefile': UNIX_MAKEFILE,
    ...cSources('ports/unix', ['main', 'modos', 'unix_mphal'], v),
    'ports/unix/runtime.py': unixRuntime(v),
    'ports/unix/variants/manifest.py': 'require("ssl")\n',
    'ports/unix/variants/standard/mpconfigvariant.mk': 'FROZEN_MANIFEST ?= $(VARIANT_DIR)/manifest.py\n',
    'ports/unix/variants/standard/manifest.py':
      'include("$(PORT_DIR)/variants/manifest.py")\n\ninclude("$(MPY_DIR)/extmod/asyncio")\n',
    'ports/unix/variants/minimal/mpconfigvariant.mk': 'FROZEN_MANIFEST ?=\n',
  };
}

/** micropython-lib, as far as the fixture's manifests `require()` it. */
export const MICROPYTHON_LIB_FILES: Record<string, string> = {
  'README.md': '# micropython-lib (mp test fixture)\n',
  'micropython/umqtt.simple/manifest.py': 'metadata(version="1.4.0")\npackage("umqtt")\n',
  'micropython/umqtt.simple/umqtt/simple.py':
    'class MQTTClient:\n    def __init__(self, client_id, server, port=0):\n        self.client_id = client_id\n        self.server = server\n',
  'python-stdlib/ssl/manifest.py': 'metadata(version="0.2.1")\nmodule("ssl.py")\n',
  'python-stdlib/ssl/ssl.py': 'import sys\n\nPROTOCOL_TLS_CLIENT = 0\n',
};

/** Two small C-library submodules some ports ask for. */
export const AXTLS_FILES: Record<string, string> = {
  README: 'axTLS (mp test fixture)\n',
  'ssl/tls1.c': '/* fixture */\nint tls1_fixture(void) { return 1; }\n',
};
export const BERKELEY_DB_FILES: Record<string, string> = {
  README: 'Berkeley DB 1.xx (mp test fixture)\n',
  'btree/bt_open.c': '/* fixture */\nint bt_open_fixture(void) { return 1; }\n',
};

/** The mqtt_as library, laid out as peterhinch/micropython-mqtt is today. */
export const MQTT_AS_FILES: Record<string, string> = {
  'README.md':
    '# micropython-mqtt (mp test fixture)\n\nAsynchronous MQTT client. Too large to compile on an ESP8266: freeze it.\n',
  LICENSE: 'MIT License (fixture)\n',
  'mqtt_as/__init__.py': `# mqtt_as.py Asynchronous version of umqtt.robust (fixture)\nimport asyncio\n\nVERSION = (0, 8, 0)\n\nconfig = {\n    "client_id": "fixture",\n    "server": None,\n    "port": 0,\n    "keepalive": 60,\n}\n\n\nclass MQTTClient:\n    def __init__(self, config):\n        self._config = config\n\n    async def connect(self):\n        return True\n`,
  'mqtt_as/mqtt_v5_properties.py':
    '# MQTT v5 properties (fixture)\nPROPERTIES = {0x01: "payload_format_indicator", 0x02: "message_expiry_interval"}\n',
  'mqtt_as/tests/range.py': '# A test script that must not be frozen\nprint("range test")\n',
  'mqtt_local_example.py':
    '# mqtt_local.py Local configuration for mqtt_as demo programs.\nfrom mqtt_as import config\n\nconfig["server"] = "192.168.0.10"\nconfig["ssid"] = "my_network"\nconfig["wifi_pw"] = "my_password"\n',
};
