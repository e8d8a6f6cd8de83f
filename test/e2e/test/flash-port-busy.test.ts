/**
 * Two programs cannot hold one serial port. Given `mp monitor` on the board, when I run
 * `mp flash` in another terminal, then it fails at once naming the port and what to do, and works
 * once the monitor has left.
 */
import { makeTestFirmware } from '@mp/test-utils/esp-firmware';
import { describe, expect, it } from 'vitest';
import { flashFixture, runMpInteractive } from './flash-helpers.ts';

describe('a port another program holds', () => {
  it('mp flash says the port is busy while mp monitor has it, and flashes after', {
    timeout: 60_000,
  }, async () => {
    const fw = makeTestFirmware('ESP8266');
    const f = flashFixture('ESP8266', [{ chip: 'esp8266' }]);
    f.project.write('fw.bin', fw.image);
    let busy: Awaited<ReturnType<typeof f.mp>> | undefined;
    const monitor = await runMpInteractive(
      ['monitor', '--port', '/dev/ttyEMU0'],
      { cwd: f.project.dir, env: f.env },
      async (io) => {
        await io.until('Ctrl-] to leave');
        busy = await f.mp(['flash', 'fw.bin', '--port', '/dev/ttyEMU0']);
        io.type('\x1d');
      },
    );
    expect(monitor.code, monitor.output).toBe(0);
    expect(busy!.code).toBe(1);
    expect(busy!.stderr).toContain('Serial port /dev/ttyEMU0 is busy: another program has it open');
    expect(busy!.stderr).toContain('Close the other program using /dev/ttyEMU0');
    expect(busy!.stderr).toContain('(PORT_BUSY)');
    const after = await f.mp(['flash', 'fw.bin', '--port', '/dev/ttyEMU0']);
    expect(after.code, after.output).toBe(0);
    expect(Buffer.from(f.flashed(fw)).equals(Buffer.from(fw.image))).toBe(true);
  });
});
