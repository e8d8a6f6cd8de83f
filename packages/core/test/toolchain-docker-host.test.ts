/** One reading of DOCKER_HOST serves the connection, the plain-HTTP probe and the mount mode. */
import { describe, expect, it } from 'vitest';
import { engineAddress, mountModeFor, parseDockerHost } from '../src/index.ts';

describe('DOCKER_HOST', () => {
  it('is read once into scheme, address, TLS and whether the engine is on this machine', () => {
    expect(parseDockerHost({})).toMatchObject({
      scheme: process.platform === 'win32' ? 'npipe' : 'unix',
      local: true,
    });
    expect(parseDockerHost({ DOCKER_HOST: 'unix:///run/user/1000/docker.sock' })).toMatchObject({
      socketPath: '/run/user/1000/docker.sock',
      local: true,
    });
    expect(parseDockerHost({ DOCKER_HOST: 'tcp://127.0.0.1:2375' })).toMatchObject({
      scheme: 'tcp',
      host: '127.0.0.1',
      port: 2375,
      local: true,
      tls: false,
    });
    expect(
      parseDockerHost({ DOCKER_HOST: 'tcp://build.example:2376', DOCKER_TLS_VERIFY: '1' }),
    ).toMatchObject({ port: 2376, tls: true, local: false });
    expect(parseDockerHost({ DOCKER_HOST: 'tcp://build.example', DOCKER_CERT_PATH: '/certs' })).toMatchObject(
      { port: 2376, tls: true },
    );
    expect(parseDockerHost({ DOCKER_HOST: 'ssh://me@build.example' })).toMatchObject({
      scheme: 'ssh',
      local: false,
    });
  });

  it('decides the mount mode and the probe from that one reading', () => {
    expect(mountModeFor({ DOCKER_HOST: 'tcp://localhost:2375' })).toBe('bind');
    expect(mountModeFor({ DOCKER_HOST: 'ssh://me@build.example' })).toBe('copy');
    expect(mountModeFor({ DOCKER_HOST: 'ssh://me@build.example', MP_DOCKER_MOUNTS: 'bind' })).toBe('bind');
    expect(engineAddress({ DOCKER_HOST: 'tcp://10.0.0.5:2375' })).toEqual({
      host: '10.0.0.5',
      port: 2375,
      needsDockerode: false,
    });
    expect(engineAddress({ DOCKER_HOST: 'tcp://10.0.0.5:2376', DOCKER_TLS_VERIFY: '1' })).toMatchObject({
      needsDockerode: true,
    });
    expect(engineAddress({ DOCKER_HOST: 'ssh://me@build.example' })).toEqual({ needsDockerode: true });
  });
});
