/**
 * How the Docker toolchain turns what a build asks for (host folders at container paths) into what
 * the engine gets: bind mounts when it sees this machine's files, named and labelled volumes when
 * it does not, and the host user's uid:gid.
 */
import { createHash } from 'node:crypto';
import { tempProject } from '@mp/test-utils';
import { describe, expect, it } from 'vitest';
import { dockerSpec, volumeName } from '../src/toolchain/docker.ts';
import type { ToolchainSpec } from '../src/toolchain/toolchain.ts';

function specFor(projectDir: string): ToolchainSpec {
  return {
    image: 'sha256:abc',
    env: { HOME: '/tmp' },
    workdir: '/mp/micropython',
    owner: { project: projectDir, board: 'esp8266-d1mini' },
    mounts: [
      {
        host: '/cache/git/micropython/aaaa',
        container: '/mp/micropython',
        readOnly: true,
        volume: { kind: 'src', key: 'aaaaaaaaaaaaaaaa', shared: true },
      },
      {
        host: `${projectDir}/.mp/build/x`,
        container: '/mp/build',
        volume: { kind: 'build', key: `${projectDir}/.mp/build/x` },
      },
      {
        host: `${projectDir}/modules`,
        container: '/mp/modules',
        readOnly: true,
        optional: true,
        volume: { kind: 'modules', key: `${projectDir}/modules` },
      },
    ],
  };
}

describe('the Docker toolchain', () => {
  it('bind-mounts the folders for an engine on this machine, leaving out an optional one that is missing', () => {
    const project = tempProject();
    const spec = dockerSpec(specFor(project.dir), 'bind');
    expect(spec.mounts).toEqual([
      { host: '/cache/git/micropython/aaaa', container: '/mp/micropython', readOnly: true },
      { host: `${project.dir}/.mp/build/x`, container: '/mp/build', readOnly: undefined },
    ]);
    expect(spec.labels).toEqual({ 'mp.project': project.dir, 'mp.board': 'esp8266-d1mini' });
    expect(spec.user).toBe(`${process.getuid!()}:${process.getgid!()}`);
  });

  it('mounts the optional folder once it exists', () => {
    const project = tempProject({ 'modules/app.py': 'x = 1\n' });
    const spec = dockerSpec(specFor(project.dir), 'bind');
    expect(spec.mounts.map((m) => m.container)).toEqual(['/mp/micropython', '/mp/build', '/mp/modules']);
  });

  it('gives a remote engine labelled volumes: one per commit for every project, the rest per project', () => {
    const project = tempProject();
    const spec = dockerSpec(specFor(project.dir), 'copy');
    const key = `${project.dir}/.mp/build/x`;
    const hash = createHash('sha256')
      .update(JSON.stringify({ key, project: project.dir }))
      .digest('hex');
    expect(spec.mounts).toEqual([
      {
        volume: 'mp-src-aaaaaaaaaaaaaaaa',
        container: '/mp/micropython',
        labels: { 'mp.volume': '1', 'mp.project': project.dir },
      },
      {
        volume: `mp-build-${hash.slice(0, 16)}`,
        container: '/mp/build',
        labels: { 'mp.volume': '1', 'mp.project': project.dir },
      },
      {
        volume: volumeName(specFor(project.dir).mounts[2]!, project.dir),
        container: '/mp/modules',
        labels: { 'mp.volume': '1', 'mp.project': project.dir },
      },
    ]);
    // The same folder of another project is another volume.
    expect(volumeName(specFor(project.dir).mounts[1]!, '/elsewhere')).not.toBe(
      `mp-build-${hash.slice(0, 16)}`,
    );
  });

  it('runs commands as the image’s user when the board asks for it', () => {
    const spec = dockerSpec({ ...specFor('/p'), hostUser: false }, 'bind');
    expect(spec.user).toBeUndefined();
  });
});
