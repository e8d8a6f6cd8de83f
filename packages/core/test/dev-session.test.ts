/**
 * `mp dev`'s session in-process: a real project on disk, with a fake toolchain, fake boards on fake
 * ports, a fake watcher and fake timers standing in for Docker, USB and time. Given a project,
 * when I save (or unplug the board, or press Ctrl-C), then these builds, flashes and events follow.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tempProject } from '@mp/test-utils';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { BuildResult, DevBoard, DevToolchain, FirmwareImage, FlashResult } from '../src/dev/effects.ts';
import { type DevEvent, type DevSessionOptions, runDevSession } from '../src/dev/session.ts';
import type { SyntaxProblem } from '../src/dev/syntax-check.ts';
import type { WatchEvent, WatchTargets } from '../src/dev/watch.ts';
import { MpError } from '../src/errors.ts';
import { openProject, type Project } from '../src/project.ts';

/** A timer-driven wait that Ctrl-C cuts short, as make and esptool are. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new MpError({ code: 'CANCELLED', message: 'Cancelled' }));
    });
  });
}

/** Builds take 1 s; each exports `export/fw-<n>.bin`. */
class FakeToolchain implements DevToolchain {
  readonly builds: Array<{ project: Project; aborted: boolean }> = [];
  running = 0;
  maxRunning = 0;
  stopped = false;
  /** The next build fails in make. */
  failNext = false;
  /** The next build finds nothing changed: the last export again. */
  upToDateNext = false;
  #last: BuildResult | undefined;
  /** What mpy-cross says about a file. */
  readonly syntaxProblems = new Map<string, SyntaxProblem>();

  async build(project: Project, { signal }: { signal: AbortSignal }) {
    const build = { project, aborted: false };
    this.builds.push(build);
    this.maxRunning = Math.max(this.maxRunning, ++this.running);
    try {
      await sleep(1000, signal);
    } catch (error) {
      build.aborted = true;
      return { ok: false as const, error };
    } finally {
      this.running--;
    }
    if (this.failNext) {
      this.failNext = false;
      return { ok: false as const, error: new MpError({ code: 'COMPILE_FAILED', message: 'make failed' }) };
    }
    if (this.upToDateNext && this.#last) {
      this.upToDateNext = false;
      return { ok: true as const, result: { ...this.#last, upToDate: true }, flashable: true };
    }
    const firmware = `${project.config.exportDir}/fw-${this.builds.length}.bin`;
    writeFileSync(firmware, `firmware ${this.builds.length}`);
    writeFileSync(`${firmware}.json`, '{}');
    const sidecar = {} as BuildResult['sidecar']; // the session passes it through untouched
    const result = {
      upToDate: false,
      firmware,
      sidecarFile: `${firmware}.json`,
      sidecar,
      logFile: '',
      durationMs: 1000,
    };
    this.#last = result;
    return { ok: true as const, result, flashable: project.config.board !== 'unix' };
  }

  async syntaxCheck(files: string[], signal: AbortSignal) {
    await sleep(5, signal);
    return files.map((f) => this.syntaxProblems.get(f)).find(Boolean);
  }

  async stop() {
    this.stopped = true;
  }
}

/** USB ports with one board behind each; a flash takes 0.5 s and fails if the board goes away. */
class FakeBoards {
  ports = ['/dev/ttyUSB0'];
  /** Firmware file per port, as flashed. */
  readonly flashed: Array<{ port: string; file: string }> = [];
  readonly open = new Set<string>();
  selections = 0;
  monitored = false;
  /** Each copy of the config's files: the port and the board paths. */
  readonly puts: Array<{ port: string; files: string[] }> = [];
  /** The next copy finds no REPL. */
  failPut = false;
  /** Flashes that connected while their firmware was built, and those of them whose build failed. */
  earlyConnections = 0;
  restartedUnflashed = 0;
  /** Unplug the board this long into the next flash (and plug it back `replugAfterMs` later, if set). */
  unplug: { afterMs: number; replugAfterMs?: number; as?: string } | undefined;

  selectPort = async ({ explicit }: { explicit?: string }) => {
    this.selections++;
    if (explicit) return explicit;
    if (this.ports.length === 0) throw new MpError({ code: 'PORT_NOT_FOUND', message: 'No board found' });
    return this.ports[0]!;
  };

  listPorts = async () => [...this.ports];

  openBoard = (port: string, onData?: (data: Uint8Array) => void): DevBoard => {
    this.open.add(port);
    this.monitored = onData !== undefined;
    return {
      port,
      flash: async (
        connectAs: FirmwareImage,
        { signal, pending }: { signal: AbortSignal; pending?: Promise<FirmwareImage> },
      ) => {
        let firmware = connectAs;
        const unplug = this.unplug;
        this.unplug = undefined;
        if (unplug) {
          await sleep(unplug.afterMs, signal);
          this.ports = this.ports.filter((p) => p !== port);
          if (unplug.replugAfterMs !== undefined)
            setTimeout(() => this.ports.push(unplug.as ?? port), unplug.replugAfterMs);
          throw new MpError({ code: 'DEVICE_LOST', message: `${port} went away` });
        }
        // 0.3 s to connect, 0.2 s to write; a flash that connected early waits for its firmware between.
        await sleep(300, signal);
        if (pending) {
          this.earlyConnections++;
          try {
            firmware = await pending;
          } catch (error) {
            this.restartedUnflashed++;
            throw error;
          }
        }
        await sleep(200, signal);
        if (!this.ports.includes(port))
          throw new MpError({ code: 'PORT_NOT_FOUND', message: `${port} is gone` });
        this.flashed.push({ port, file: firmware.file });
        onData?.(new TextEncoder().encode('MicroPython (fake)\r\n>>> '));
        return flashResult(port);
      },
      put: async (files, run) => {
        await new Promise((resolve) => setTimeout(resolve, 200));
        if (this.failPut) {
          this.failPut = false;
          throw new MpError({ code: 'REPL_NOT_ANSWERING', message: `${run.port} did not answer a REPL` });
        }
        this.puts.push({ port: run.port, files: files.map((f) => f.to) });
        return files.map((file) => ({ file, status: 'copied' as const, bytes: 1 }));
      },
      close: async () => {
        this.open.delete(port);
      },
    };
  };
}

function flashResult(port: string): FlashResult {
  const device = {
    chip: 'ESP8266',
    description: 'ESP8266EX',
    mac: '5c:cf:7f:0a:1b:2c',
    flashSize: '4MB',
    flashSizeBytes: 4 << 20,
    baudRate: 460800,
  };
  return {
    port,
    device,
    mode: 'delta',
    fellBack: false,
    imageBytes: 4096,
    writtenBytes: 4096,
    compressedBytes: 100,
    wireBytes: 200,
    sectorsWritten: 1,
    sectorsTotal: 1,
  };
}

/** Saves, as chokidar would report them for the project's targets. */
class FakeWatcher {
  readonly targets: WatchTargets[] = [];
  open = 0;
  #onEvent: ((event: WatchEvent) => void) | undefined;

  watch = async (targets: WatchTargets, onEvent: (event: WatchEvent) => void) => {
    this.targets.push(targets);
    this.#onEvent = onEvent;
    this.open++;
    return { ready: Promise.resolve(), close: async () => void this.open-- };
  };

  save(path: string): void {
    const kind = this.targets.at(-1)!.configFiles.includes(path) ? 'config' : 'source';
    this.#onEvent!({ kind, path, event: 'change' });
  }
}

/** A project on disk whose config is `config` (no libraries, so nothing is fetched or loaded). */
async function givenProject(config: Record<string, unknown> = {}) {
  const dir = tempProject({
    'mp.config.json': JSON.stringify({ libraries: [], ...config }),
    'modules/app.py': 'VERSION = 1\n',
    'export/.keep': '',
  });
  const open = () => openProject({ projectDir: dir.dir, env: {} });
  return { dir, open, project: await open() };
}

/** Starts mp dev on `projects` (the next one opened on each config reload), on fake timers. */
function startDev(projects: Project[], options: Partial<DevSessionOptions> = {}) {
  vi.useFakeTimers();
  const toolchain = new FakeToolchain();
  const boards = new FakeBoards();
  const watcher = new FakeWatcher();
  const cache = { registered: 0, released: 0 };
  const events: DevEvent[] = [];
  const stop = new AbortController();
  let opened = 0;
  const session = runDevSession({
    openProject: async () => projects[Math.min(opened++, projects.length - 1)]!,
    signal: stop.signal,
    onEvent: (event) => events.push(event),
    ...options,
    effects: {
      toolchain,
      selectPort: boards.selectPort,
      listPorts: boards.listPorts,
      openBoard: boards.openBoard,
      watch: watcher.watch,
      readFirmware: async (sidecarFile) => firmwareImage(sidecarFile.replace(/\.json$/, '')),
      registerCacheUse: async () => {
        cache.registered++;
        return async () => void cache.released++;
      },
      // Synchronous, so fake time alone decides what happens when.
      removeFile: async (path) => rmSync(path, { force: true }),
      hashFile: async (path) => createHash('sha256').update(readFileSync(path)).digest('hex'),
      ...options.effects,
    },
  });
  /** The event types since `from`, the board's output aside (it may come before or after `dev:flashed`). */
  const types = (from = 0) =>
    events
      .slice(from)
      .map((e) => e.type)
      .filter((t) => t !== 'dev:monitor');
  return {
    toolchain,
    boards,
    watcher,
    cache,
    events,
    types,
    session,
    stop: () => stop.abort(),
    /** Lets fake time pass in 10 ms steps until `done()` holds (or fails after `maxMs`). */
    async until(done: () => boolean, maxMs = 30_000) {
      for (let waited = 0; !done(); waited += 10) {
        if (waited > maxMs) throw new Error(`still waiting after ${maxMs} ms: ${types().join(', ')}`);
        await vi.advanceTimersByTimeAsync(10);
      }
    },
    /** Fake time passes until mp dev is idle again after event `from`. */
    settled(from = 0) {
      return this.until(() => events.slice(from).some((e) => e.type === 'dev:idle'));
    },
  };
}

function firmwareImage(file: string): FirmwareImage {
  return {
    file,
    boardId: 'esp8266-d1mini',
    segments: [{ offset: 0, data: readFileSync(file), file }],
    mode: 'keep',
    freq: 'keep',
    size: 'detect',
    baud: 460800,
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('mp dev session', () => {
  it('builds and flashes once at start, shows the board booting, registers as a cache user', async () => {
    const { project } = await givenProject();
    const dev = startDev([project]);
    await dev.settled();
    expect(dev.types()).toEqual([
      'dev:watching',
      'dev:build-start',
      'dev:built',
      'dev:flash-start',
      'dev:flashed',
      'dev:idle',
    ]);
    expect(dev.boards.flashed).toEqual([
      { port: '/dev/ttyUSB0', file: `${project.config.exportDir}/fw-1.bin` },
    ]);
    const output = dev.events.flatMap((e) =>
      e.type === 'dev:monitor' ? [Buffer.from(e.data).toString()] : [],
    );
    expect(output.join('')).toContain('MicroPython (fake)');
    expect(dev.cache).toEqual({ registered: 1, released: 0 });
    dev.stop();
    await dev.session;
  });

  it('a burst of saves gives one build with every saved file', async () => {
    const { project } = await givenProject();
    const dev = startDev([project]);
    await dev.settled();
    const from = dev.events.length;
    const [a, b] = [`${project.config.modulesDir}/a.py`, `${project.config.modulesDir}/b.py`];
    for (const file of [a, b, a]) {
      dev.watcher.save(file);
      await vi.advanceTimersByTimeAsync(3);
    }
    await dev.settled(from);
    expect(dev.toolchain.builds).toHaveLength(2);
    expect(dev.events.slice(from).find((e) => e.type === 'dev:change')).toEqual({
      type: 'dev:change',
      files: [a, b],
    });
    expect(dev.boards.flashed.map((f) => f.file)).toEqual([
      `${project.config.exportDir}/fw-1.bin`,
      `${project.config.exportDir}/fw-2.bin`,
    ]);
    dev.stop();
    await dev.session;
  });

  it('saves during a build queue exactly one rebuild, which runs after it with the newest files', async () => {
    const { project } = await givenProject();
    const app = `${project.config.modulesDir}/app.py`;
    const dev = startDev([project]);
    await vi.advanceTimersByTimeAsync(500); // the first build is half way
    dev.watcher.save(app);
    await vi.advanceTimersByTimeAsync(300);
    dev.watcher.save(app);
    await dev.until(() => dev.toolchain.builds.length === 2);
    await dev.settled(dev.events.findIndex((e) => e.type === 'dev:change'));
    await vi.advanceTimersByTimeAsync(5000);
    expect(dev.toolchain.builds).toHaveLength(2);
    expect(dev.toolchain.maxRunning).toBe(1);
    // The first build's firmware is flashed before the rebuild starts: one step at a time.
    expect(dev.types()).toEqual([
      'dev:watching',
      'dev:build-start',
      'dev:built',
      'dev:flash-start',
      'dev:flashed',
      'dev:change',
      'dev:build-start',
      'dev:built',
      'dev:flash-start',
      'dev:flashed',
      'dev:idle',
    ]);
    dev.stop();
    await dev.session;
  });

  it('a syntax error shows file:line, stops the build and flashes nothing; the next good save flashes', async () => {
    const { project } = await givenProject();
    const app = `${project.config.modulesDir}/app.py`;
    const dev = startDev([project]);
    await dev.settled();
    const from = dev.events.length;
    dev.toolchain.syntaxProblems.set(app, {
      file: app,
      line: 2,
      message: 'SyntaxError: invalid syntax',
      output: [],
    });
    dev.watcher.save(app);
    await dev.settled(from);
    expect(dev.types(from)).toEqual(['dev:change', 'dev:build-start', 'dev:syntax-error', 'dev:idle']);
    expect(dev.events.find((e) => e.type === 'dev:syntax-error')).toMatchObject({
      problem: { file: app, line: 2 },
    });
    // mpy-cross answered in 5 ms: make was stopped, not waited for.
    expect(dev.toolchain.builds[1]!.aborted).toBe(true);
    expect(dev.boards.flashed).toHaveLength(1);

    dev.toolchain.syntaxProblems.clear();
    const fixed = dev.events.length;
    dev.watcher.save(app);
    await dev.settled(fixed);
    expect(dev.types(fixed)).toContain('dev:flashed');
    expect(dev.boards.flashed).toHaveLength(2);
    dev.stop();
    await dev.session;
  });

  it('a failed build keeps the last good firmware on the board and in export/; a good one replaces it', async () => {
    const { project } = await givenProject();
    const app = `${project.config.modulesDir}/app.py`;
    const exported = (n: number) => `${project.config.exportDir}/fw-${n}.bin`;
    const dev = startDev([project]);
    await dev.settled();
    dev.toolchain.failNext = true;
    const from = dev.events.length;
    dev.watcher.save(app);
    await dev.settled(from);
    expect(dev.types(from)).toEqual(['dev:change', 'dev:build-start', 'dev:build-failed', 'dev:idle']);
    expect(dev.boards.flashed.map((f) => f.file)).toEqual([exported(1)]);
    expect(existsSync(exported(1))).toBe(true);

    const good = dev.events.length;
    dev.watcher.save(app);
    await dev.settled(good);
    expect(dev.boards.flashed.map((f) => f.file)).toEqual([exported(1), exported(3)]);
    // One save, one export: the session's previous firmware and sidecar are gone.
    expect([exported(1), `${exported(1)}.json`, exported(3)].map((f) => existsSync(f))).toEqual([
      false,
      false,
      true,
    ]);
    dev.stop();
    await dev.session;
  });

  it('a board unplugged mid-flash gets the firmware when it comes back, under another name, without a save', async () => {
    const { project } = await givenProject();
    const dev = startDev([project], { replugPollMs: 1000 });
    // The cable comes out 200 ms into the first flash and goes back in 500 ms later, as ttyUSB1.
    dev.boards.unplug = { afterMs: 200, replugAfterMs: 500, as: '/dev/ttyUSB1' };
    await dev.until(() => dev.types().includes('dev:flash-failed'));
    const failedAt = dev.events.findIndex((e) => e.type === 'dev:flash-failed');
    expect(dev.events[failedAt]).toMatchObject({
      error: { code: 'DEVICE_LOST' },
      willRetry: true,
    });
    expect(dev.boards.flashed).toEqual([]);
    await dev.until(() => dev.boards.flashed.length === 1, 3000);
    expect(dev.boards.flashed).toEqual([
      { port: '/dev/ttyUSB1', file: `${project.config.exportDir}/fw-1.bin` },
    ]);
    expect(dev.types(failedAt + 1)).toEqual(['dev:idle', 'dev:flash-start', 'dev:flashed', 'dev:idle']);
    expect(dev.toolchain.builds).toHaveLength(1);
    dev.stop();
    await dev.session;
  });

  it('a board absent at start is flashed when it is plugged in; no look at the ports once it is flashed', async () => {
    const { project } = await givenProject();
    const listPorts = vi.fn(async () => [...dev.boards.ports]);
    const dev = startDev([project], { replugPollMs: 1000, effects: { listPorts } });
    dev.boards.ports = [];
    await dev.settled();
    expect(dev.types()).toContain('dev:flash-failed');
    await vi.advanceTimersByTimeAsync(5000);
    expect(dev.boards.flashed).toEqual([]);
    dev.boards.ports = ['/dev/ttyACM0'];
    await dev.until(() => dev.boards.flashed.length === 1, 1000 + 500 + 10);
    expect(dev.boards.flashed[0]!.port).toBe('/dev/ttyACM0');
    const looks = listPorts.mock.calls.length;
    await vi.advanceTimersByTimeAsync(5000);
    expect(listPorts.mock.calls.length).toBe(looks);
    dev.stop();
    await dev.session;
  });

  it('a board back while a build fails still gets the last good firmware', async () => {
    const { project } = await givenProject();
    const app = `${project.config.modulesDir}/app.py`;
    const dev = startDev([project], { replugPollMs: 300 });
    dev.boards.ports = [];
    await dev.settled();
    dev.toolchain.failNext = true;
    dev.watcher.save(app);
    await vi.advanceTimersByTimeAsync(400); // the build is running
    dev.boards.ports = ['/dev/ttyUSB0'];
    await dev.until(() => dev.boards.flashed.length === 1);
    expect(dev.types()).toContain('dev:build-failed');
    expect(dev.boards.flashed).toEqual([
      { port: '/dev/ttyUSB0', file: `${project.config.exportDir}/fw-1.bin` },
    ]);
    dev.stop();
    await dev.session;
  });

  it('a config change re-opens the project, watches its targets and picks the port again', async () => {
    const first = await givenProject();
    const second = await givenProject({ flash: { port: '/dev/ttyUSB1' } });
    const dev = startDev([first.project, second.project]);
    dev.boards.ports = ['/dev/ttyUSB0', '/dev/ttyUSB1'];
    await dev.settled();
    const app = `${first.project.config.modulesDir}/app.py`;
    dev.watcher.save(app);
    await dev.settled(dev.events.length - 1);
    expect(dev.boards.selections).toBe(1); // the port is kept between flashes

    const from = dev.events.length;
    dev.watcher.save(first.project.config.configFile!);
    await dev.settled(from);
    expect(dev.types(from).slice(0, 4)).toEqual([
      'dev:change',
      'dev:reload',
      'dev:watching',
      'dev:build-start',
    ]);
    expect(dev.toolchain.builds.at(-1)!.project).toBe(second.project);
    expect(dev.watcher.targets.at(-1)!.configFiles).toEqual([second.project.config.configFile]);
    expect(dev.watcher.open).toBe(1);
    expect(dev.boards.flashed.at(-1)!.port).toBe('/dev/ttyUSB1');
    // The monitor left the old port for the new one.
    expect([...dev.boards.open]).toEqual(['/dev/ttyUSB1']);
    dev.stop();
    await dev.session;
  });

  it('Ctrl-C during a build stops it at once, removes the container, releases the port and the cache', async () => {
    const { project } = await givenProject();
    const dev = startDev([project]);
    await dev.settled();
    dev.watcher.save(`${project.config.modulesDir}/app.py`);
    await vi.advanceTimersByTimeAsync(300);
    const from = dev.events.length;
    dev.stop();
    await vi.advanceTimersByTimeAsync(0);
    await dev.session;
    expect(dev.toolchain.builds.at(-1)!.aborted).toBe(true);
    expect(dev.toolchain.stopped).toBe(true);
    expect(dev.boards.open.size).toBe(0);
    expect(dev.watcher.open).toBe(0);
    expect(dev.cache).toEqual({ registered: 1, released: 1 });
    // Nothing after Ctrl-C: no failure reported, no idle, no flash.
    expect(dev.types(from)).toEqual([]);
  });

  it('Ctrl-C while it starts builds nothing and releases everything', async () => {
    const { project } = await givenProject();
    const dev = startDev([project]);
    dev.stop();
    await dev.session;
    expect(dev.toolchain.builds).toEqual([]);
    expect(dev.toolchain.stopped).toBe(true);
    expect(dev.watcher.open).toBe(0);
    expect(dev.cache).toEqual({ registered: 1, released: 1 });
  });

  it('a cache registration that fails ends the session with its error, and the container is removed', async () => {
    const { project } = await givenProject();
    const refused = new MpError({ code: 'CANCELLED', message: 'Cancelled while waiting for the cache lock' });
    const dev = startDev([project], { effects: { registerCacheUse: async () => Promise.reject(refused) } });
    await expect(dev.session).rejects.toBe(refused);
    expect(dev.toolchain.stopped).toBe(true);
    expect(dev.toolchain.builds).toEqual([]);
  });

  it('Ctrl-C while waiting for the board stops looking for it', async () => {
    const { project } = await givenProject();
    const listPorts = vi.fn(async () => []);
    const dev = startDev([project], { effects: { listPorts } });
    dev.boards.ports = [];
    await dev.settled();
    dev.stop();
    await dev.session;
    const looks = listPorts.mock.calls.length;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(listPorts.mock.calls.length).toBe(looks);
    expect(dev.cache.released).toBe(1);
  });

  it('--no-flash builds only; --no-monitor flashes with the port closed between flashes', async () => {
    const { project } = await givenProject();
    const noFlash = startDev([project], { flash: false });
    await noFlash.settled();
    expect(noFlash.types()).toEqual(['dev:watching', 'dev:build-start', 'dev:built', 'dev:idle']);
    expect(noFlash.boards.selections).toBe(0);
    noFlash.stop();
    await noFlash.session;

    const noMonitor = startDev([project], { monitor: false });
    await noMonitor.settled();
    expect(noMonitor.boards.flashed).toHaveLength(1);
    expect(noMonitor.boards.monitored).toBe(false);
    expect(noMonitor.events.some((e) => e.type === 'dev:monitor')).toBe(false);
    noMonitor.stop();
    await noMonitor.session;
  });

  it('copies the config’s files after a flash only when they changed; a failed copy is retried after the next', async () => {
    const { dir, project } = await givenProject({ files: ['main.py', 'export/mqtt_local.py'] });
    dir.write('main.py', 'import app\n');
    dir.write('export/mqtt_local.py', 'config = {}\n');
    const dev = startDev([project]);
    await dev.settled();
    expect(dev.types()).toEqual([
      'dev:watching',
      'dev:build-start',
      'dev:built',
      'dev:flash-start',
      'dev:flashed',
      'dev:put-start',
      'dev:put',
      'dev:idle',
    ]);
    expect(dev.boards.puts).toEqual([{ port: '/dev/ttyUSB0', files: ['/main.py', '/mqtt_local.py'] }]);
    // main.py beside the config is watched; export/ is not (builds write it).
    expect(dev.watcher.targets[0]!.boardFiles).toEqual([dir.path('main.py')]);

    // A module edit: built and flashed, the files are as the board has them.
    let from = dev.events.length;
    dev.watcher.save(`${project.config.modulesDir}/app.py`);
    await dev.settled(from);
    expect(dev.types(from)).not.toContain('dev:put-start');
    expect(dev.boards.puts).toHaveLength(1);

    // main.py saved: the build is up to date, the board already runs that firmware (not flashed
    // again, nor connected to early), and main.py is copied.
    from = dev.events.length;
    dir.write('main.py', 'import app\nprint("edited")\n');
    dev.toolchain.upToDateNext = true;
    dev.watcher.save(dir.path('main.py'));
    await dev.settled(from);
    expect(dev.types(from)).toEqual([
      'dev:change',
      'dev:build-start',
      'dev:built',
      'dev:flash-skipped',
      'dev:put-start',
      'dev:put',
      'dev:idle',
    ]);
    expect(dev.boards.earlyConnections).toBe(1); // the module edit's, not this one
    expect(dev.boards.flashed).toHaveLength(2);
    expect(dev.boards.puts).toHaveLength(2);

    // The board does not answer: reported, the flash stands, and the next flash copies them.
    from = dev.events.length;
    dev.boards.failPut = true;
    dir.write('export/mqtt_local.py', 'config = {"ssid": "new"}\n');
    dev.watcher.save(`${project.config.modulesDir}/app.py`);
    await dev.settled(from);
    expect(dev.types(from)).toEqual(expect.arrayContaining(['dev:flashed', 'dev:put-failed']));
    expect(dev.boards.puts).toHaveLength(2);
    from = dev.events.length;
    dev.watcher.save(`${project.config.modulesDir}/app.py`);
    await dev.settled(from);
    expect(dev.boards.puts).toHaveLength(3);
    dev.stop();
    await dev.session;

    const noFiles = startDev([project], { files: false });
    await noFiles.settled();
    expect(noFiles.boards.flashed).toHaveLength(1);
    expect(noFiles.boards.puts).toEqual([]);
    noFiles.stop();
    await noFiles.session;
  });

  it('connects to the board while the build runs once the saved Python compiles; a failed build restarts it', async () => {
    const { project } = await givenProject();
    const app = `${project.config.modulesDir}/app.py`;
    const dev = startDev([project]);
    await dev.settled();
    const flashed = () => dev.events.filter((e) => e.type === 'dev:flashed') as Array<{ ms: number }>;
    // The first flash connects after its build: 0.3 s to connect, 0.2 s to write.
    expect(dev.boards.earlyConnections).toBe(0);
    expect(flashed()[0]!.ms).toBeGreaterThanOrEqual(500);

    // A good save: the 0.3 s connection hides in the 1 s build; after it only the write is left.
    let from = dev.events.length;
    dev.watcher.save(app);
    await dev.settled(from);
    expect(dev.types(from)).toEqual([
      'dev:change',
      'dev:build-start',
      'dev:built',
      'dev:flash-start',
      'dev:flashed',
      'dev:idle',
    ]);
    expect(dev.boards.earlyConnections).toBe(1);
    expect(flashed()[1]!.ms).toBeLessThan(300);
    expect(dev.boards.flashed.map((f) => f.file)).toEqual([
      `${project.config.exportDir}/fw-1.bin`,
      `${project.config.exportDir}/fw-2.bin`,
    ]);

    // make fails after the board was reset into its loader: restarted unflashed, no flash error.
    from = dev.events.length;
    dev.toolchain.failNext = true;
    dev.watcher.save(app);
    await dev.settled(from);
    expect(dev.types(from)).toEqual(['dev:change', 'dev:build-start', 'dev:build-failed', 'dev:idle']);
    expect(dev.boards.earlyConnections).toBe(2);
    expect(dev.boards.restartedUnflashed).toBe(1);
    expect(dev.boards.flashed).toHaveLength(2);

    // A syntax error never touches the board.
    from = dev.events.length;
    dev.toolchain.syntaxProblems.set(app, { file: app, line: 1, message: 'SyntaxError', output: [] });
    dev.watcher.save(app);
    await dev.settled(from);
    expect(dev.boards.earlyConnections).toBe(2);
    dev.toolchain.syntaxProblems.clear();

    // After a failed build, the next good save connects early again.
    from = dev.events.length;
    dev.watcher.save(app);
    await dev.settled(from);
    expect(dev.boards.earlyConnections).toBe(3);
    expect(dev.boards.flashed).toHaveLength(3);
    dev.stop();
    await dev.session;

    const off = startDev([project], { connectEarly: false });
    await off.settled();
    const later = off.events.length;
    off.watcher.save(app);
    await off.settled(later);
    expect(off.boards.flashed).toHaveLength(2);
    expect(off.boards.earlyConnections).toBe(0);
    off.stop();
    await off.session;
  });

  it('a board without a chip (unix) is rebuilt on save and never looks for a port', async () => {
    const { project } = await givenProject({ board: 'unix' });
    const dev = startDev([project]);
    await dev.settled();
    const from = dev.events.length;
    dev.watcher.save(`${project.config.modulesDir}/app.py`);
    await dev.settled(from);
    expect(dev.toolchain.builds).toHaveLength(2);
    expect(dev.boards.selections).toBe(0);
    expect(dev.types().filter((t) => t.startsWith('dev:flash'))).toEqual([]);
    dev.stop();
    await dev.session;
  });
});
