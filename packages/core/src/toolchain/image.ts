/**
 * The toolchain image a board compiles in: used if the engine has it, else pulled (with progress),
 * else built from the board plugin's Dockerfile. `--image` names an image to use or pull, never built.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import type Dockerode from 'dockerode';
import { CancelledError, MpError } from '../errors.ts';
import { connectDocker } from './engine.ts';
import { inspectImageId } from './engine-http.ts';

export interface ImageRequest {
  /** Board id: names the tag of a locally built image and appears in messages. */
  boardId: string;
  /** Image to use or pull (the board's `toolchain.image`, or `--image`). */
  ref?: string;
  /** Dockerfile to build when the image is neither present nor pullable. */
  dockerfile?: string;
  buildArgs?: Record<string, string>;
  /** The user named the image (`--image`, config `image`): use or pull it, never build another. */
  override?: boolean;
}

export interface ToolchainImageInfo {
  /** The reference used (`larsks/esp-open-sdk:latest`, `mp-toolchain/unix:3f9a…`). */
  ref: string;
  /** Engine image id (`sha256:…`), part of the build cache key. */
  id: string;
  obtained: 'present' | 'pulled' | 'built';
}

export interface ImageProgressOptions {
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
  /** Pull/build output, one line at a time. */
  onLine?: (line: string) => void;
  /** Pull progress in bytes over all layers. */
  onProgress?: (done: number, total?: number, unit?: string) => void;
  /** What is happening now ("pulling larsks/esp-open-sdk:latest"). */
  onTitle?: (title: string) => void;
  docker?: Dockerode;
}

/** `larsks/esp-open-sdk` → `larsks/esp-open-sdk:latest` (pulling without a tag would fetch every tag). */
export function normalizeImageRef(ref: string): string {
  if (ref.includes('@')) return ref;
  const lastSlash = ref.lastIndexOf('/');
  return ref.slice(lastSlash + 1).includes(':') ? ref : `${ref}:latest`;
}

/** Files of a build context, relative, sorted; what the Docker build sees. */
async function contextFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (current: string) => {
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const full = join(current, entry.name);
      if (entry.isDirectory()) await walk(full);
      else out.push(relative(dir, full));
    }
  };
  await walk(dir);
  return out.sort();
}

/**
 * The tag of an image built from a Dockerfile: `mp-toolchain/<board>:<hash of the context>`, so an
 * edited Dockerfile is rebuilt and an unchanged one is reused.
 */
export async function dockerfileImageTag(
  boardId: string,
  dockerfile: string,
  buildArgs: Record<string, string> = {},
): Promise<string> {
  const dir = dirname(dockerfile);
  const hash = createHash('sha256');
  for (const file of await contextFiles(dir)) {
    hash.update(`${file}\0`);
    hash.update(await readFile(join(dir, file)));
    hash.update('\0');
  }
  hash.update(`${basename(dockerfile)}\0${JSON.stringify(Object.entries(buildArgs).sort())}`);
  return `mp-toolchain/${boardId.toLowerCase().replace(/[^a-z0-9._-]/g, '-')}:${hash.digest('hex').slice(0, 16)}`;
}

/** The reference the engine is asked for, without contacting it. */
export async function toolchainImageRef(request: ImageRequest): Promise<string> {
  if (request.ref) return normalizeImageRef(request.ref);
  if (request.dockerfile) return dockerfileImageTag(request.boardId, request.dockerfile, request.buildArgs);
  throw new MpError({
    code: 'BOARD_NO_TOOLCHAIN',
    message: `Board ${request.boardId} names neither a toolchain image nor a Dockerfile`,
    plugin: request.boardId,
    step: 'toolchain',
    hint: 'Pass --image <ref> (or `image` in mp.config), or give the board plugin `toolchain.image` or `toolchain.dockerfile`.',
  });
}

/** Present → use; else pull; else build from the Dockerfile. */
export async function ensureImage(
  request: ImageRequest,
  options: ImageProgressOptions = {},
): Promise<ToolchainImageInfo> {
  const ref = await toolchainImageRef(request);
  const present = await inspectImageId(ref, options.env);
  if (present) return { ref, id: present, obtained: 'present' };
  if (options.signal?.aborted) throw new CancelledError('toolchain');
  const docker = options.docker ?? (await connectDocker(options.env));

  const builtLocally = !request.ref;
  let pullError: unknown;
  if (!builtLocally) {
    try {
      options.onTitle?.(`Toolchain: pulling ${ref}`);
      await pullImage(docker, ref, options);
      const id = await inspectImageId(ref, options.env);
      if (id) return { ref, id, obtained: 'pulled' };
    } catch (error) {
      if (error instanceof CancelledError || options.signal?.aborted) throw new CancelledError('toolchain');
      pullError = error;
      options.onLine?.(`pull failed: ${describe(error)}`);
    }
  }
  if (request.dockerfile && !request.override) {
    options.onTitle?.(`Toolchain: building ${ref} from ${request.dockerfile}`);
    await buildImage(docker, ref, request, options);
    const id = await inspectImageId(ref, options.env);
    if (id) return { ref, id, obtained: 'built' };
  }
  throw new MpError({
    code: 'IMAGE_UNAVAILABLE',
    message: `Toolchain image ${ref} for board ${request.boardId} is not present and could not be pulled${pullError ? `: ${describe(pullError)}` : ''}`,
    plugin: request.boardId,
    step: 'toolchain',
    hint: request.override
      ? 'Check the image name (`docker images`), pull or build it yourself, or leave out --image to use the board’s own toolchain.'
      : 'Check the network and registry access (`docker pull ' +
        ref +
        '`), or build a toolchain image yourself and pass it with --image (or `image` in mp.config).',
    cause: pullError,
  });
}

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // dockerode wraps engine answers as "(HTTP code 404) unexpected - <engine message>".
  return message.replace(/^\(HTTP code \d+\)\s*[a-z ]*-\s*/i, '').trim();
}

interface EngineEvent {
  id?: string;
  status?: string;
  stream?: string;
  error?: string;
  errorDetail?: { message?: string };
  progressDetail?: { current?: number; total?: number };
}

/** Reads the engine's JSON-lines progress stream; rejects on an `error` event or on abort. */
function followEvents(
  stream: NodeJS.ReadableStream,
  onEvent: (event: EngineEvent) => void,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    let failed: string | undefined;
    const onAbort = () => {
      (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      reject(new CancelledError('toolchain'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    stream.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      let at = buffer.indexOf('\n');
      while (at >= 0) {
        const line = buffer.slice(0, at).trim();
        buffer = buffer.slice(at + 1);
        at = buffer.indexOf('\n');
        if (!line) continue;
        try {
          const event = JSON.parse(line) as EngineEvent;
          if (event.error) failed = event.errorDetail?.message ?? event.error;
          onEvent(event);
        } catch {
          onEvent({ stream: line });
        }
      }
    });
    const finish = () => {
      signal?.removeEventListener('abort', onAbort);
      if (signal?.aborted) return;
      if (failed) reject(new Error(failed));
      else resolve();
    };
    stream.on('end', finish);
    stream.on('close', finish);
    stream.on('error', (error) => {
      signal?.removeEventListener('abort', onAbort);
      reject(error);
    });
  });
}

async function pullImage(docker: Dockerode, ref: string, options: ImageProgressOptions): Promise<void> {
  const stream = (await docker.pull(ref)) as NodeJS.ReadableStream;
  const layers = new Map<string, { current: number; total: number }>();
  let lastStatus = '';
  await followEvents(
    stream,
    (event) => {
      if (event.id && event.progressDetail?.total && /Downloading/.test(event.status ?? '')) {
        layers.set(event.id, {
          current: event.progressDetail.current ?? 0,
          total: event.progressDetail.total,
        });
      } else if (event.id && /Download complete|Pull complete|Already exists/.test(event.status ?? '')) {
        const layer = layers.get(event.id);
        if (layer) layer.current = layer.total;
      }
      if (layers.size > 0) {
        let done = 0;
        let total = 0;
        for (const layer of layers.values()) {
          done += layer.current;
          total += layer.total;
        }
        options.onProgress?.(done, total, 'bytes');
      }
      const status = `${event.id ? `${event.id}: ` : ''}${event.status ?? ''}`;
      if (event.status && !event.progressDetail?.total && status !== lastStatus) {
        lastStatus = status;
        options.onLine?.(status);
      }
    },
    options.signal,
  );
}

async function buildImage(
  docker: Dockerode,
  tag: string,
  request: ImageRequest,
  options: ImageProgressOptions,
): Promise<void> {
  const dockerfile = request.dockerfile!;
  const context = dirname(dockerfile);
  let stream: NodeJS.ReadableStream;
  try {
    stream = (await docker.buildImage(
      { context, src: await contextFiles(context) },
      {
        t: tag,
        dockerfile: basename(dockerfile),
        buildargs: request.buildArgs ?? {},
        labels: { 'mp.toolchain.board': request.boardId },
        rm: true,
        forcerm: true,
      },
    )) as NodeJS.ReadableStream;
  } catch (error) {
    throw imageBuildFailed(request, describe(error), error);
  }
  const tail: string[] = [];
  try {
    await followEvents(
      stream,
      (event) => {
        const text = event.stream ?? event.status ?? event.error;
        if (!text) return;
        for (const line of text.split(/\r?\n/)) {
          if (!line.trim()) continue;
          options.onLine?.(line);
          tail.push(line);
          if (tail.length > 15) tail.shift();
        }
      },
      options.signal,
    );
  } catch (error) {
    if (error instanceof CancelledError) throw error;
    throw imageBuildFailed(request, `${describe(error)}\n${tail.map((l) => `  ${l}`).join('\n')}`, error);
  }
}

function imageBuildFailed(request: ImageRequest, detail: string, cause: unknown): MpError {
  return new MpError({
    code: 'IMAGE_BUILD_FAILED',
    message: `Building the toolchain image of board ${request.boardId} from ${request.dockerfile} failed: ${detail}`,
    plugin: request.boardId,
    file: request.dockerfile,
    step: 'toolchain',
    hint: 'Fix the Dockerfile (or the network its RUN steps need), or pass a ready-made image with --image.',
    cause,
  });
}
