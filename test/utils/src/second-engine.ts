/**
 * A second Docker engine on this machine, for tests of builds spread over several engines: its own
 * dockerd with its own data root, exec root, pid file and config, without a bridge network or
 * iptables rules, listening on a unix socket in its folder, and reached either there or through a
 * loopback TCP port (a proxy to that socket in this process). It starts empty: `loadImage` copies
 * images from the machine's engine (`docker save | docker load`). `stop()` ends it as a failing
 * engine ends for its clients (its containers go within a second, the TCP port refuses), and
 * `cleanup()` removes its folder.
 *
 * It runs in a network namespace of its own: a dockerd started with `--bridge=none` deletes the
 * `docker0` interface of its namespace, which would otherwise be the machine engine's bridge.
 *
 *   const engine = await startSecondEngine();
 *   await engine.loadImage(FIXTURE_TOOLCHAIN_IMAGE);
 *   try { … DOCKER_HOST: engine.host … } finally { await engine.cleanup(); }
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SecondEngine {
  /** What DOCKER_HOST takes: `tcp://127.0.0.1:<port>` or `unix://<folder>/docker.sock`. */
  host: string;
  /** The engine's own socket, `unix://<folder>/docker.sock` (what the docker CLI of the helper uses). */
  socket: string;
  dir: string;
  readonly running: boolean;
  /** The docker CLI against this engine (its own socket, not the proxy); its stdout, trimmed. */
  docker(args: string[]): string;
  /** Copies an image of the machine's engine into this one. */
  loadImage(ref: string): Promise<void>;
  /** Ids of mp's toolchain containers running here. */
  toolchainContainers(): Promise<string[]>;
  /** Stops the engine (SIGTERM; its containers are killed within a second). Idempotent. */
  stop(): Promise<void>;
  /** Stops it if needed, then removes its folder. */
  cleanup(): Promise<void>;
}

export function dockerdAvailable(): boolean {
  return spawnSync('dockerd', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** A loopback TCP port whose connections go to `socketPath`; closing it drops them all. */
async function loopbackProxy(socketPath: string): Promise<{ port: number; close(): Promise<void> }> {
  const open = new Set<Socket>();
  const server: Server = createServer((client) => {
    const engine = createConnection(socketPath);
    open.add(client).add(engine);
    client.pipe(engine).pipe(client);
    const drop = () => {
      client.destroy();
      engine.destroy();
      open.delete(client);
      open.delete(engine);
    };
    client.on('error', drop).on('close', drop);
    engine.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

export async function startSecondEngine(
  options: { socket?: 'tcp' | 'unix'; timeoutMs?: number } = {},
): Promise<SecondEngine> {
  // Short: a unix socket path must fit in 108 bytes.
  const dir = mkdtempSync(join(tmpdir(), 'mp-engine-'));
  const socket = `unix://${join(dir, 'docker.sock')}`;
  writeFileSync(join(dir, 'daemon.json'), '{}\n');
  const logFile = join(dir, 'dockerd.log');
  const log = openSync(logFile, 'a');
  const name = dir.split('/').pop()!;
  const child: ChildProcess = spawn(
    'unshare',
    [
      '--net',
      '--',
      'dockerd',
      '--config-file',
      join(dir, 'daemon.json'),
      '--data-root',
      join(dir, 'data'),
      '--exec-root',
      join(dir, 'exec'),
      '--pidfile',
      join(dir, 'docker.pid'),
      '--host',
      socket,
      '--bridge=none',
      '--iptables=false',
      '--ip-masq=false',
      '--cgroup-parent',
      `/${name}`,
      '--shutdown-timeout',
      '1',
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', log, log] },
  );
  closeSync(log);
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const docker = (args: string[]) => {
    const run = spawnSync('docker', ['--host', socket, ...args], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    if (run.status !== 0) throw new Error(`docker --host ${socket} ${args.join(' ')}: ${run.stderr.trim()}`);
    return run.stdout.trim();
  };

  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    if (exited) throw new Error(`dockerd exited at start:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
    const probe = spawnSync('docker', ['--host', socket, 'version', '--format', '{{.Server.Version}}'], {
      stdio: 'ignore',
      timeout: 5000,
    });
    if (probe.status === 0) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`dockerd did not answer at ${socket}:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }

  const proxy = options.socket === 'unix' ? undefined : await loopbackProxy(join(dir, 'docker.sock'));
  const host = proxy ? `tcp://127.0.0.1:${proxy.port}` : socket;

  const stop = async () => {
    await proxy?.close();
    if (exited) return;
    child.kill('SIGTERM');
    const killed = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exit;
    clearTimeout(killed);
  };

  return {
    host,
    socket,
    dir,
    get running() {
      return !exited;
    },
    docker,
    // Not spawnSync: the TCP proxy lives in this process, and a blocked event loop would stall it.
    toolchainContainers: () =>
      new Promise((resolve, reject) => {
        execFile(
          'docker',
          ['--host', socket, 'ps', '-q', '--filter', 'label=mp.toolchain'],
          { encoding: 'utf8' },
          (error, stdout) =>
            error ? reject(error) : resolve(stdout.trim() ? stdout.trim().split('\n') : []),
        );
      }),
    loadImage: (ref) =>
      new Promise((resolve, reject) => {
        const save = spawn('docker', ['save', ref], { stdio: ['ignore', 'pipe', 'pipe'] });
        const load = spawn('docker', ['--host', socket, 'load', '-q'], { stdio: ['pipe', 'ignore', 'pipe'] });
        save.stdout.pipe(load.stdin);
        let stderr = '';
        save.stderr.on('data', (d) => (stderr += d));
        load.stderr.on('data', (d) => (stderr += d));
        load.on('error', reject);
        load.on('close', (code) =>
          code === 0 ? resolve() : reject(new Error(`loading ${ref} into ${socket} failed: ${stderr}`)),
        );
      }),
    stop,
    async cleanup() {
      await stop();
      // What a killed dockerd may have left mounted under its folder.
      const mounts = readFileSync('/proc/self/mounts', 'utf8')
        .split('\n')
        .map((line) => line.split(' ')[1] ?? '')
        .filter((path) => path.startsWith(`${dir}/`))
        .sort((a, b) => b.length - a.length);
      for (const path of mounts) spawnSync('umount', ['-l', path], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
