/**
 * `targets`, `parallel` and `engines` in mp.config: given a config with them, a target takes
 * every key it leaves out from the top level, the environment and the flags win over both, and a
 * wrong entry is reported with its key path, all at once.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempProject } from '@mp/test-utils';
import { describe, expect, it } from 'vitest';
import {
  connectDocker,
  dockerodeOptions,
  loadConfig,
  type MpError,
  openProject,
  readDockerContext,
  resolveEngines,
  selectTargets,
  sha256Hex,
  targetProject,
  ValidationError,
} from '../src/index.ts';

function project(config: Record<string, unknown>) {
  return tempProject({ 'mp.config.json': JSON.stringify(config) });
}

describe('config targets', () => {
  it('take the board, variant, make variables, libraries, MicroPython and image from the top level unless they name their own', async () => {
    const dir = project({
      board: 'esp8266-d1mini',
      make: { MICROPY_PY_BTREE: 0, FOO: 'top' },
      micropython: { ref: 'v1.27.0' },
      image: 'toolchain:top',
      targets: {
        d1mini: {},
        'd1mini-1m': { variant: 'FLASH_1M', make: { FOO: 'own' } },
        esp32: { board: 'esp32-generic', libraries: [], micropython: { ref: 'v1.28.0' }, image: 'idf:own' },
        local: { board: 'unix', micropython: { path: '../mpy' } },
      },
    });
    const config = await loadConfig({ projectDir: dir.dir, env: {} });
    expect(config.targets.map((t) => t.name)).toEqual(['d1mini', 'd1mini-1m', 'esp32', 'local']);
    const [d1mini, oneMeg, esp32, local] = config.targets;
    expect(d1mini).toEqual({
      name: 'd1mini',
      board: 'esp8266-d1mini',
      variant: undefined,
      make: { MICROPY_PY_BTREE: '0', FOO: 'top' },
      libraries: [{ id: 'mqtt_as' }],
      micropython: { ref: 'v1.27.0', git: 'https://github.com/micropython/micropython.git', path: undefined },
      image: 'toolchain:top',
    });
    expect(oneMeg).toMatchObject({ variant: 'FLASH_1M', make: { MICROPY_PY_BTREE: '0', FOO: 'own' } });
    expect(esp32).toMatchObject({ board: 'esp32-generic', libraries: [], image: 'idf:own' });
    expect(esp32?.micropython.ref).toBe('v1.28.0');
    // A target's path replaces the top level's ref, as a later layer always does.
    expect(local?.micropython.ref).toBeUndefined();
    expect(local?.micropython.path).toBe(join(dir.dir, '..', 'mpy'));
    // The top level itself is unchanged.
    expect(config.board).toBe('esp8266-d1mini');
    expect(config.target).toBeUndefined();
  });

  it('give way to the environment and the flags, as every key does', async () => {
    const dir = project({
      targets: { a: { micropython: { ref: 'v1.27.0' }, libraries: ['mqtt_as'], make: { X: 1 } } },
    });
    const config = await loadConfig({
      projectDir: dir.dir,
      env: { MP_MICROPYTHON_REF: 'v1.28.0' },
      overrides: { libraries: [], make: { X: '2' }, image: 'flag:image' },
    });
    expect(config.targets[0]).toMatchObject({
      micropython: { ref: 'v1.28.0' },
      libraries: [],
      make: { X: '2' },
      image: 'flag:image',
    });
  });

  it('become projects of their own for createBuild, keyed by the target', async () => {
    const dir = project({ targets: { small: { board: 'unix', variant: 'minimal' } } });
    const opened = await openProject({ projectDir: dir.dir, env: {} });
    const [small] = selectTargets(opened, 'all');
    const built = targetProject(opened, small!);
    expect(built.config).toMatchObject({ board: 'unix', variant: 'minimal', target: 'small' });
    expect(built.stateDir).toBe(opened.stateDir);
    expect(built.plugins).toBe(opened.plugins);
  });

  it('are chosen by name, in the order named, and an unknown name says which ones exist', async () => {
    const dir = project({ targets: { alpha: {}, beta: {}, gamma: {} } });
    const opened = await openProject({ projectDir: dir.dir, env: {} });
    expect(selectTargets(opened, ['gamma', 'alpha,beta']).map((t) => t.name)).toEqual([
      'gamma',
      'alpha',
      'beta',
    ]);
    const error = (() => {
      try {
        selectTargets(opened, ['alpah']);
      } catch (e) {
        return e as MpError;
      }
    })();
    expect(error?.code).toBe('TARGET_UNKNOWN');
    expect(error?.message).toContain('did you mean "alpha"?');
    expect(error?.hint).toContain('alpha, beta, gamma');
    expect(error?.exitCode).toBe(2);
  });

  it('are required by --all: a project without them says how to add them', async () => {
    const opened = await openProject({ projectDir: tempProject().dir, env: {} });
    expect(() => selectTargets(opened, 'all')).toThrow(expect.objectContaining({ code: 'TARGETS_NONE' }));
  });

  it('report every wrong entry with its key path', async () => {
    const dir = project({
      targets: {
        '-bad': {},
        ok: { bord: 'unix', variant: 3, make: { '1X': 1 } },
      },
      parallel: 0,
      engines: ['', { host: 'tcp://a:2376', context: 'b' }, { mounts: 'nfs', host: 'x' }],
    });
    const error = await loadConfig({ projectDir: dir.dir, env: {} }).catch((e) => e);
    expect(error).toBeInstanceOf(ValidationError);
    const paths = (error as ValidationError).issues.map((i) => `${i.path}: ${i.message}`);
    expect(paths).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^targets.*"-bad" is not a target name/),
        expect.stringMatching(/^targets\.ok\.bord: is not a known key \(did you mean "board"\?\)/),
        expect.stringMatching(/^targets\.ok\.variant: must be a non-empty string/),
        expect.stringMatching(/^targets\.ok\.make.*is not a make variable name/),
        expect.stringMatching(/^parallel: must be at least 1/),
        expect.stringMatching(/^engines\[0\]: is required|^engines\[0\]: must be/),
        expect.stringMatching(/^engines\[1\]: needs `host`/),
        expect.stringMatching(/^engines\[2\]\.mounts: must be one of bind, copy/),
      ]),
    );
  });
});

describe('config engines', () => {
  it('are addresses, Docker contexts or objects with their TLS folder (relative to the project)', async () => {
    const dir = project({
      parallel: 3,
      engines: [
        'unix:///var/run/docker.sock',
        'buildbox',
        { host: 'tcp://build2:2376', certPath: 'certs/build2', parallel: 6, name: 'build2' },
        { host: 'ssh://ci@build3', mounts: 'copy' },
      ],
    });
    const config = await loadConfig({ projectDir: dir.dir, env: {} });
    expect(config.parallel).toBe(3);
    expect(config.engines).toEqual([
      { name: 'unix:///var/run/docker.sock', host: 'unix:///var/run/docker.sock' },
      { name: 'buildbox', context: 'buildbox' },
      {
        name: 'build2',
        host: 'tcp://build2:2376',
        context: undefined,
        certPath: dir.path('certs/build2'),
        tlsVerify: true,
        parallel: 6,
        mounts: undefined,
      },
      {
        name: 'ssh://ci@build3',
        host: 'ssh://ci@build3',
        context: undefined,
        certPath: undefined,
        tlsVerify: undefined,
        parallel: undefined,
        mounts: 'copy',
      },
    ]);
  });

  it('each get an environment of their own: one engine’s TLS material never reaches another', async () => {
    const docker = tempProject();
    const id = sha256Hex('buildbox');
    mkdirSync(join(docker.dir, 'contexts/meta', id), { recursive: true });
    writeFileSync(
      join(docker.dir, 'contexts/meta', id, 'meta.json'),
      JSON.stringify({
        Name: 'buildbox',
        Endpoints: { docker: { Host: 'tcp://buildbox:2376', SkipTLSVerify: false } },
      }),
    );
    const tls = join(docker.dir, 'contexts/tls', id, 'docker');
    mkdirSync(tls, { recursive: true });
    for (const name of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(join(tls, name), name);
    const env = {
      PATH: '/usr/bin',
      DOCKER_CONFIG: docker.dir,
      DOCKER_HOST: 'tcp://default:2376',
      DOCKER_TLS_VERIFY: '1',
      DOCKER_CERT_PATH: '/home/me/.docker',
    };
    const engines = await resolveEngines(
      [
        { name: 'local', host: 'unix:///var/run/docker.sock' },
        { name: 'buildbox', context: 'buildbox' },
        {
          name: 'b2',
          host: 'tcp://b2:2376',
          certPath: '/certs/b2',
          tlsVerify: true,
          parallel: 2,
          mounts: 'copy',
        },
        { name: 'default', context: 'default' },
      ],
      { env, parallel: 4 },
    );
    expect(engines.map((e) => [e.name, e.parallel])).toEqual([
      ['local', 4],
      ['buildbox', 4],
      ['b2', 2],
      ['default', 4],
    ]);
    const docker_ = (e: (typeof engines)[number]) => ({
      DOCKER_HOST: e.env.DOCKER_HOST,
      DOCKER_TLS_VERIFY: e.env.DOCKER_TLS_VERIFY,
      DOCKER_CERT_PATH: e.env.DOCKER_CERT_PATH,
      MP_DOCKER_MOUNTS: e.env.MP_DOCKER_MOUNTS,
      PATH: e.env.PATH,
    });
    expect(engines.map(docker_)).toEqual([
      { DOCKER_HOST: 'unix:///var/run/docker.sock', PATH: '/usr/bin' },
      { DOCKER_HOST: 'tcp://buildbox:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: tls, PATH: '/usr/bin' },
      {
        DOCKER_HOST: 'tcp://b2:2376',
        DOCKER_TLS_VERIFY: '1',
        DOCKER_CERT_PATH: '/certs/b2',
        MP_DOCKER_MOUNTS: 'copy',
        PATH: '/usr/bin',
      },
      // The context "default" is the environment's own engine.
      {
        DOCKER_HOST: 'tcp://default:2376',
        DOCKER_TLS_VERIFY: '1',
        DOCKER_CERT_PATH: '/home/me/.docker',
        PATH: '/usr/bin',
      },
    ]);
    await expect(readDockerContext('nope', env)).rejects.toMatchObject({ code: 'ENGINE_CONTEXT_UNKNOWN' });
  });

  it('default to the one engine DOCKER_HOST names, with the environment as it is', async () => {
    const env = { DOCKER_HOST: 'tcp://10.0.0.5:2375' };
    const [only, ...rest] = await resolveEngines([], { env });
    expect(rest).toEqual([]);
    expect(only).toEqual({ name: 'tcp://10.0.0.5:2375', env, parallel: undefined });
  });

  it('are reached with their own address and TLS material, whatever the process’s DOCKER_HOST says', async () => {
    const certs = tempProject({ 'ca.pem': 'CA', 'cert.pem': 'CERT', 'key.pem': 'KEY' });
    const tls = await dockerodeOptions({
      DOCKER_HOST: 'tcp://b2.example:2376',
      DOCKER_TLS_VERIFY: '1',
      DOCKER_CERT_PATH: certs.dir,
    });
    expect(tls).toMatchObject({ protocol: 'https', host: 'b2.example', port: 2376, socketPath: undefined });
    expect([tls.ca, tls.cert, tls.key].map(String)).toEqual(['CA', 'CERT', 'KEY']);
    expect(await dockerodeOptions({ DOCKER_HOST: 'tcp://127.0.0.1:2399' })).toMatchObject({
      protocol: 'http',
      host: '127.0.0.1',
      port: 2399,
      ca: undefined,
    });
    expect(await dockerodeOptions({ DOCKER_HOST: 'ssh://ci@build3:2222' })).toMatchObject({
      protocol: 'ssh',
      host: 'build3',
      port: '2222',
      username: 'ci',
    });
    const client = await connectDocker({ DOCKER_HOST: 'unix:///run/engine-b.sock' });
    const modem = (client as unknown as { modem: { socketPath?: string; host?: string } }).modem;
    expect(modem.socketPath).toBe('/run/engine-b.sock');
    expect(modem.host).toBeUndefined();
  });
});
