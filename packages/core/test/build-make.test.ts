import {
  analyzeMakeFailure,
  type BoardPlugin,
  defineBoard,
  makeScript,
  parseSubmoduleList,
  portMakeVariables,
} from '@mp/core';
import { describe, expect, it } from 'vitest';

const esp8266: BoardPlugin = defineBoard({
  id: 'esp8266-d1mini',
  title: 'D1 mini',
  port: 'esp8266',
  exportPrefix: 'ESP8266',
  board: 'ESP8266_GENERIC',
  toolchain: { image: 'larsks/esp-open-sdk' },
  artifacts: { firmware: 'firmware.bin' },
  firmware: 'firmware',
  defaultManifest: '$(BOARD_DIR)/manifest_2MiB.py',
  makeArgs: ['MICROPY_PY_BTREE=0', "CFLAGS_EXTRA=-DX='a b'"],
});

describe('the make invocation', () => {
  it('passes BUILD, BOARD, BOARD_VARIANT (VARIANT on unix) and the stable manifest path', () => {
    expect(portMakeVariables(esp8266, { ...esp8266, variant: 'FLASH_1M' })).toEqual([
      'BUILD=/mp/build/port',
      'BOARD=ESP8266_GENERIC',
      'BOARD_VARIANT=FLASH_1M',
      'FROZEN_MANIFEST=/mp/build/manifest.py',
    ]);
    const unix = { ...esp8266, port: 'unix', board: undefined, variant: 'standard' };
    expect(portMakeVariables(unix, unix)).toEqual([
      'BUILD=/mp/build/port',
      'VARIANT=standard',
      'MICROPY_MANIFEST_VARIANT_DIR=/mp/micropython/ports/unix/variants/standard',
      'FROZEN_MANIFEST=/mp/build/manifest.py',
    ]);
  });

  it('builds mpy-cross into the build directory and hands it to the port, with parallel jobs', () => {
    const script = makeScript({ board: esp8266, target: esp8266, jobs: 8, buildMpyCross: true });
    expect(script).toContain('make -C mpy-cross BUILD=/mp/build/mpy-cross -j8');
    expect(script).toContain('export MICROPY_MPYCROSS="$MPY_CROSS"');
    expect(script).toContain(
      `make -C ports/esp8266 BUILD=/mp/build/port BOARD=ESP8266_GENERIC FROZEN_MANIFEST=/mp/build/manifest.py MICROPY_MPYCROSS="$MPY_CROSS" -j8 MICROPY_PY_BTREE=0 'CFLAGS_EXTRA=-DX='\\''a b'\\'''`,
    );
    expect(makeScript({ board: esp8266, target: esp8266, jobs: 2, buildMpyCross: false })).not.toContain(
      'make -C mpy-cross',
    );
  });

  it('reads the submodule list from make submodules', () => {
    expect(
      parseSubmoduleList([
        "make: Entering directory '/mp/micropython/ports/esp8266'",
        'Updating submodules: lib/axtls lib/berkeley-db-1.xx lib/micropython-lib',
        'mp-shim: git submodule sync lib/axtls',
      ]),
    ).toEqual(['lib/axtls', 'lib/berkeley-db-1.xx', 'lib/micropython-lib']);
    expect(parseSubmoduleList(['nothing'])).toBeUndefined();
    expect(parseSubmoduleList(['Updating submodules: '])).toEqual([]);
  });
});

describe('reading a failed make', () => {
  const mappings = [
    { container: '/mp/modules', host: '/home/me/p/modules' },
    { container: '/mp/micropython', host: '/cache/trees/abc' },
  ];

  it('finds an mpy-cross syntax error, its module file and line', () => {
    const failure = analyzeMakeFailure(
      [
        'CC main.c',
        'MPY app.py',
        'error compiling app.py:',
        'Traceback (most recent call last):',
        '  File "app.py", line 3',
        'SyntaxError: invalid syntax',
        'make: *** [../../py/mkrules.mk:20: /mp/build/port/frozen_content.bin] Error 1',
      ],
      mappings,
      { 'app.py': '/home/me/p/modules/app.py' },
    );
    expect(failure.kind).toBe('freeze');
    expect(failure.file).toBe('/home/me/p/modules/app.py');
    expect(failure.line).toBe(3);
    expect(failure.excerpt).toContain('SyntaxError: invalid syntax');
    expect(failure.excerpt).toContain('error compiling app.py:');
  });

  it('finds compiler errors and maps container paths to the host', () => {
    const failure = analyzeMakeFailure(
      [
        'CC ../../py/obj.c',
        '/mp/micropython/py/obj.c:42:5: error: expected ‘;’ before ‘}’ token',
        '   42 |     return x',
        'make: *** [Makefile:10: build/py/obj.o] Error 1',
      ],
      mappings,
      {},
    );
    expect(failure.kind).toBe('compile');
    expect(failure.file).toBe('/cache/trees/abc/py/obj.c');
    expect(failure.line).toBe(42);
    expect(failure.excerpt[0]).toBe('/cache/trees/abc/py/obj.c:42:5: error: expected ‘;’ before ‘}’ token');
  });

  it('shows locations relative to the port folder as host paths the user can open', () => {
    // What the real xtensa gcc printed for ports/esp8266 (make -C ports/esp8266): paths as make passed them.
    const failure = analyzeMakeFailure(
      [
        'CC main.c',
        'In file included from ../../py/persistentcode.h:29,',
        '                 from main.c:35:',
        '../../py/persistentcode.h:72:2: error: #error "unsupported"',
        'main.c:224:5: error: implicit declaration of function ‘foo’',
        'make: *** [../../py/mkrules.mk:90: /mp/build/port/main.o] Error 1',
      ],
      mappings,
      {},
      '/mp/micropython/ports/esp8266',
    );
    expect(failure.file).toBe('/cache/trees/abc/py/persistentcode.h');
    expect(failure.line).toBe(72);
    expect(failure.excerpt).toContain(
      '/cache/trees/abc/py/persistentcode.h:72:2: error: #error "unsupported"',
    );
    expect(failure.excerpt).toContain(
      '/cache/trees/abc/ports/esp8266/main.c:224:5: error: implicit declaration of function ‘foo’',
    );
    expect(failure.excerpt).toContain('                 from /cache/trees/abc/ports/esp8266/main.c:35:');
    expect(failure.excerpt).toContain(
      'make: *** [/cache/trees/abc/py/mkrules.mk:90: /mp/build/port/main.o] Error 1',
    );
  });
});
