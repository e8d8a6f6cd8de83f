/**
 * ccache for toolchain containers, whatever the image: a clean build (after `mp clean`, another
 * build folder, another project) compiles each C file once per toolchain image and board, later
 * builds take the objects from the cache.
 *
 *   /mp/ccache          the compiler cache (CCACHE_DIR): `<mp cache>/ccache/<board>-<image id>/`
 *                       bind-mounted, or a named volume on an engine that cannot see this machine
 *   /mp/ccache-tool     ccache itself, read-only: a named volume filled once per engine from a small
 *                       helper image (Debian's ccache with the shared libraries and the loader it
 *                       needs, so it runs in any glibc or musl image, the kit's ESP8266 toolchain
 *                       included, which has no ccache)
 *
 * The make script (firmware/make.ts) puts shims first on PATH for every compiler the image has
 * (`gcc`, `cc`, `xtensa-lx106-elf-gcc`, …: what `$(CROSS_COMPILE)gcc` and `CC` name in the unix and
 * esp8266 Makefiles), each running `ccache <the real compiler>`. Paths in the container are fixed
 * (/mp/...), so objects are found again from any project. The firmware does not change: ccache
 * hands back the compiler's own output. ESP-IDF (esp32) runs its own ccache: it only gets
 * CCACHE_DIR and IDF_CCACHE_ENABLE=1.
 *
 * `MP_CCACHE=0` turns it off. When the helper image cannot be built (no network for its apt-get),
 * builds go on without ccache and mp tries again a day later.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashOf } from '../util/hash.ts';
import { connectDocker } from './engine.ts';
import { engineApi } from './engine-api.ts';
import { engineAddress } from './engine-http.ts';
import { ensureImage } from './image.ts';

export const CCACHE_DIR = '/mp/ccache';
export const CCACHE_TOOL_DIR = '/mp/ccache-tool';
/** The ccache entry point inside the tool volume; the make script uses ccache when it is there. */
export const CCACHE_BIN = `${CCACHE_TOOL_DIR}/current/ccache`;

/**
 * The helper image: Debian's ccache, its libraries and loader in /opt/mp-ccache, started as
 * `ld.so --library-path lib lib/ccache` so the toolchain image's own libc never matters.
 */
export const CCACHE_DOCKERFILE = `FROM debian:bookworm-slim
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ccache \\
 && rm -rf /var/lib/apt/lists/* \\
 && mkdir -p /opt/mp-ccache/lib \\
 && cp /usr/bin/ccache /opt/mp-ccache/lib/ccache \\
 && for l in $(ldd /usr/bin/ccache | awk '$3 ~ /^\\// {print $3}'); do cp -L "$l" /opt/mp-ccache/lib/; done \\
 && cp -L "$(ldd /usr/bin/ccache | awk '$1 ~ /^\\/.*ld-linux/ {print $1}')" /opt/mp-ccache/lib/ld.so \\
 && printf '#!/bin/sh\\nd=${CCACHE_TOOL_DIR}/current/lib\\nexec "$d/ld.so" --library-path "$d" "$d/ccache" "$@"\\n' > /opt/mp-ccache/ccache \\
 && chmod 755 /opt/mp-ccache/ccache \\
 && /opt/mp-ccache/lib/ld.so --library-path /opt/mp-ccache/lib /opt/mp-ccache/lib/ccache --version | head -n 1
`;

const TOOL_HASH = hashOf(CCACHE_DOCKERFILE).slice(0, 12);
/** On the volumes that hold a tool for every build on the engine (ccache's program), not a cache's data. */
export const TOOL_LABEL = 'mp.tool';
/** The named volume holding ccache on the engine (one per engine and helper image version). */
export const CCACHE_TOOL_VOLUME = `mp-ccache-tool-${TOOL_HASH}`;
/** After a failed attempt to make the tool, how long builds go without trying again. */
const RETRY_MS = 24 * 60 * 60 * 1000;

/** The compiler cache folder of a board and toolchain image, in mp's cache. */
export function ccacheHostDir(cacheDir: string, boardId: string, imageId: string): string {
  return join(cacheDir, 'ccache', `${boardId}-${imageId.replace(/^sha256:/, '').slice(0, 16)}`);
}

export function ccacheFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.MP_CCACHE?.trim() !== '0';
}

/** Whether the engine has the tool volume (checked over plain HTTP when it can be: a few ms). */
export async function ccacheToolReady(env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const address = engineAddress(env);
  try {
    if (!address.needsDockerode) {
      await engineApi(address).json('GET', `/volumes/${CCACHE_TOOL_VOLUME}`);
      return true;
    }
    await (await connectDocker()).getVolume(CCACHE_TOOL_VOLUME).inspect();
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes the tool volume if the engine lacks it: the helper image built (once per engine), then its
 * /opt/mp-ccache copied into the volume, renamed into place last so no build sees half of it.
 * Resolves false (never throws) when that fails; `stateDir` remembers the failure for a day.
 */
export async function ensureCcacheTool(
  stateDir: string,
  options: { env?: NodeJS.ProcessEnv; onTitle?: (title: string) => void } = {},
): Promise<boolean> {
  const env = options.env ?? process.env;
  if (await ccacheToolReady(env)) return true;
  const failed = join(stateDir, '.tool-failed');
  const last = await stat(failed).catch(() => undefined);
  if (last && Date.now() - last.mtimeMs < RETRY_MS) return false;
  try {
    options.onTitle?.('Compile: preparing ccache for toolchain containers (once per Docker engine)');
    const context = join(stateDir, '.tool-image');
    await mkdir(context, { recursive: true });
    const dockerfile = join(context, 'Dockerfile');
    if ((await readFile(dockerfile, 'utf8').catch(() => '')) !== CCACHE_DOCKERFILE)
      await writeFile(dockerfile, CCACHE_DOCKERFILE);
    const image = await ensureImage({ boardId: 'mp-ccache', dockerfile }, { env });
    const docker = await connectDocker();
    const container = await docker.createContainer({
      Image: image.id,
      Entrypoint: ['sh', '-c'],
      Cmd: [
        'set -e; [ -x /out/current/ccache ] && exit 0; t=/out/.tmp-$(hostname); rm -rf "$t"; cp -a /opt/mp-ccache "$t"; mv -T "$t" /out/current || rm -rf "$t"',
      ],
      Labels: { [TOOL_LABEL]: 'ccache' },
      HostConfig: {
        AutoRemove: true,
        Mounts: [
          {
            Type: 'volume',
            Source: CCACHE_TOOL_VOLUME,
            Target: '/out',
            VolumeOptions: { NoCopy: true, Labels: { 'mp.volume': '1', [TOOL_LABEL]: 'ccache' } },
          } as never,
        ],
      },
    });
    const waiting = container.wait();
    await container.start();
    const { StatusCode } = (await waiting) as { StatusCode: number };
    if (StatusCode !== 0) throw new Error(`filling ${CCACHE_TOOL_VOLUME} exited ${StatusCode}`);
    return true;
  } catch {
    await mkdir(stateDir, { recursive: true }).catch(() => undefined);
    await writeFile(failed, `${new Date().toISOString()}\n`).catch(() => undefined);
    return false;
  }
}

/** The folder exists for the bind mount (the engine would create it root-owned). */
export async function ensureCcacheDir(dir: string): Promise<void> {
  if (!existsSync(dir)) await mkdir(dir, { recursive: true });
}

/**
 * Shell lines for the top of a make script: when ccache is mounted, a shim per compiler on PATH
 * (made once per container, in its /tmp) that runs it through ccache, first on PATH. Folders of
 * other ccache masquerade links are left out, so ccache never calls itself.
 */
export function ccacheShimScript(): string {
  return `if [ -x ${CCACHE_BIN} ] && [ -d ${CCACHE_DIR} ]; then
  mp_shims=/tmp/mp-ccache-shims
  if [ ! -d "$mp_shims" ]; then
    mp_new="$mp_shims.$$"; mkdir -p "$mp_new"
    mp_ifs="$IFS"; IFS=:
    for mp_dir in $PATH; do
      case "$mp_dir" in *ccache*) continue ;; esac
      for mp_cc in "$mp_dir"/*-gcc "$mp_dir"/*-g++ "$mp_dir"/gcc "$mp_dir"/g++ "$mp_dir"/cc "$mp_dir"/c++; do
        mp_name=\${mp_cc##*/}
        if [ -x "$mp_cc" ] && [ ! -e "$mp_new/$mp_name" ]; then
          printf '#!/bin/sh\\nexec ${CCACHE_BIN} %s "$@"\\n' "$mp_cc" > "$mp_new/$mp_name"
          chmod 755 "$mp_new/$mp_name"
        fi
      done
    done
    IFS="$mp_ifs"
    mv "$mp_new" "$mp_shims" 2>/dev/null || rm -rf "$mp_new"
  fi
  export PATH="$mp_shims:$PATH"
fi`;
}
