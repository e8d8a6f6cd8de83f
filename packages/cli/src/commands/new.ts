/**
 * `mp new board <id>` / `mp new library <id>`: writes a small, working plugin package that mp
 * discovers at once (workspace package, or the project's boards/ and plugins/ folders) and that
 * passes the plugin conformance suite. Never overwrites an existing folder.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { cModuleTemplate, findWorkspaceRoot, MpError, UsageError } from '@mp/core';
import { style } from '../ui/style.ts';
import type { CommandRun, OPTIONS } from './table.ts';

const KEBAB = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const PYTHON_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const run: CommandRun<typeof OPTIONS.new> = async (input) => {
  const [kindWord, id] = input.positionals as [string, string];
  if (kindWord === 'c-module' || kindWord === 'cmodule') return newCModule(input, id);
  const kind =
    kindWord === 'board' ? 'board' : kindWord === 'library' || kindWord === 'lib' ? 'library' : undefined;
  if (!kind)
    throw new UsageError(
      `\`mp new\` creates a "board", a "library" or a "c-module", not "${kindWord}"`,
      'Usage: mp new <board|library|c-module> <id>',
    );
  if (kind === 'board' && !KEBAB.test(id)) {
    throw new UsageError(`Board id "${id}" must be kebab-case (a-z, 0-9, -), e.g. my-board`);
  }
  if (kind === 'library' && !PYTHON_NAME.test(id)) {
    throw new UsageError(
      `Library id "${id}" must be the Python import name (letters, digits, _), e.g. my_lib`,
    );
  }
  const cwd = resolve(input.cwd);
  const workspace = findWorkspaceRoot(cwd);
  const base = workspace?.dir ?? cwd;
  const folder = kind === 'board' ? 'boards' : 'plugins';
  const dir = typeof input.values.dir === 'string' ? resolve(cwd, input.values.dir) : join(base, folder, id);
  if (existsSync(dir)) {
    throw new MpError({
      code: 'SCAFFOLD_EXISTS',
      message: `${dir} already exists; mp new never overwrites files`,
      file: dir,
      hint: 'Pick another id, or --dir for another folder.',
      exitCode: 2,
    });
  }
  const scope = workspaceScope(workspace?.dir);
  const packageName = kind === 'board' ? `${scope}board-${id}` : `${scope}lib-${id.replace(/_/g, '-')}`;
  const files = kind === 'board' ? boardFiles(id, packageName) : libraryFiles(id, packageName);
  try {
    for (const [path, content] of Object.entries(files)) {
      await mkdir(join(dir, path, '..'), { recursive: true });
      await writeFile(join(dir, path), content, { flag: 'wx' });
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true }); // no half-written package left behind
    throw error;
  }
  const shown = relative(cwd, dir) || '.';
  if (input.json) {
    input.stdout.write(
      `${JSON.stringify({ type: 'result', ok: true, kind, id, packageName, dir, files: Object.keys(files) })}\n`,
    );
  } else {
    input.stdout.write(
      `${style.green('✔')} Created ${kind} plugin ${style.bold(id)} (${packageName}) in ${shown}\n` +
        `  Edit ${join(shown, 'src/index.ts')}, then check it with \`mp ${kind === 'board' ? 'boards' : 'libs'}\`.\n` +
        (workspace
          ? '  Run `pnpm install` to link it into the workspace for its tests (`pnpm --filter ' +
            packageName +
            ' test`).\n'
          : ''),
    );
  }
  return 0;
};

/**
 * `mp new c-module mymod`: `cmodules/mymod/` of the project with a C file, micropython.mk and
 * micropython.cmake (one function, `mymod.add(a, b)`), ready for `cModules: ['cmodules/mymod']`.
 */
async function newCModule(
  input: Parameters<CommandRun<typeof OPTIONS.new>>[0],
  name: string,
): Promise<number> {
  const files = cModuleTemplate(name);
  const cwd = resolve(input.cwd);
  const dir =
    typeof input.values.dir === 'string' ? resolve(cwd, input.values.dir) : join(cwd, 'cmodules', name);
  if (existsSync(dir)) {
    throw new MpError({
      code: 'SCAFFOLD_EXISTS',
      message: `${dir} already exists; mp new never overwrites files`,
      file: dir,
      hint: 'Pick another name, or --dir for another folder.',
      exitCode: 2,
    });
  }
  await mkdir(dir, { recursive: true });
  for (const [file, content] of Object.entries(files))
    await writeFile(join(dir, file), content, { flag: 'wx' });
  const shown = relative(cwd, dir) || '.';
  if (input.json) {
    input.stdout.write(
      `${JSON.stringify({ type: 'result', ok: true, kind: 'c-module', id: name, dir, files: Object.keys(files) })}\n`,
    );
  } else {
    input.stdout.write(
      `${style.green('✔')} Created C module ${style.bold(name)} in ${shown}\n` +
        `  Add it to the build with \`cModules: ['${shown}']\` in mp.config (or --c-module ${shown}), then \`import ${name}; ${name}.add(2, 3)\`.\n`,
    );
  }
  return 0;
}

/** Packages in the mp repository itself are @mp/…; elsewhere unscoped mp-… names. */
function workspaceScope(workspaceDir: string | undefined): string {
  if (!workspaceDir) return 'mp-';
  try {
    const pkg = JSON.parse(readFileSync(join(workspaceDir, 'package.json'), 'utf8'));
    return pkg.name === 'mp-monorepo' ? '@mp/' : 'mp-';
  } catch {
    return 'mp-';
  }
}

function packageJson(packageName: string, description: string, mp: Record<string, string>): string {
  // Inside the mp repository @mp/core and @mp/plugin-testing are its workspace packages; anywhere
  // else they come from the registry.
  const mpPackage = packageName.startsWith('@mp/') ? 'workspace:*' : '*';
  return `${JSON.stringify(
    {
      name: packageName,
      version: '0.1.0',
      description,
      type: 'module',
      exports: { '.': './src/index.ts', './package.json': './package.json' },
      files: ['src', 'python'],
      mp,
      scripts: { test: 'vitest run' },
      peerDependencies: { '@mp/core': '*' },
      devDependencies: { '@mp/core': mpPackage, '@mp/plugin-testing': mpPackage, vitest: '^5.1.1' },
    },
    null,
    2,
  )}\n`;
}

const conformanceTest = (kind: 'board' | 'library') => `import { fileURLToPath } from 'node:url';
import { ${kind === 'board' ? 'describeBoardConformance' : 'describeLibraryConformance'} } from '@mp/plugin-testing';
import plugin from '../src/index.ts';

${kind === 'board' ? 'describeBoardConformance' : 'describeLibraryConformance'}(plugin, fileURLToPath(new URL('..', import.meta.url)));
`;

const vitestConfig = `import { defineConfig } from 'vitest/config';

export default defineConfig({ test: { include: ['test/**/*.test.ts'] } });
`;

function boardFiles(id: string, packageName: string): Record<string, string> {
  return {
    'package.json': packageJson(packageName, `mp board: ${id}`, { board: id }),
    'src/index.ts': `/**
 * Board plugin "${id}". It starts as a copy of a generic ESP32 board: change the MicroPython
 * board name, chip, toolchain and flash layout to match your hardware. Every field is described
 * in @mp/core's BoardPlugin type; \`mp boards\` shows whether the plugin loads.
 */
import { defineBoard } from '@mp/core';

export default defineBoard({
  id: '${id}',
  title: '${id} (ESP32)',
  port: 'esp32',
  chip: 'ESP32',
  exportPrefix: '${id.toUpperCase()}',
  // MicroPython's board folder under ports/esp32/boards, and its variant if any.
  board: 'ESP32_GENERIC',
  toolchain: {
    image: 'espressif/idf:v5.5.1',
    env: { HOME: '/tmp/mp-home' },
    shellPrelude: 'mkdir -p "$HOME" && git config --global --add safe.directory "*"',
  },
  artifacts: { firmware: 'firmware.bin' },
  firmware: 'firmware',
  defaultManifest: '$(PORT_DIR)/boards/manifest.py',
  flash: {
    // ESP32 and ESP32-S2 images start at 0x1000; S3, C3 and C6 at 0x0.
    segments: [{ offset: 0x1000, artifact: 'firmware' }],
    mode: 'keep',
    freq: 'keep',
    size: 'keep',
    baud: 460800,
  },
});
`,
    'test/conformance.test.ts': conformanceTest('board'),
    'vitest.config.ts': vitestConfig,
  };
}

function libraryFiles(id: string, packageName: string): Record<string, string> {
  return {
    'package.json': packageJson(packageName, `mp library: ${id}`, { library: id }),
    'src/index.ts': `/**
 * Library plugin "${id}": freezes the Python package in ../python/${id} into the firmware.
 * Point \`source\` at a git repository instead (\`{ git: 'https://…', ref: 'main' }\`) to freeze
 * published code. Every field is described in @mp/core's LibraryPlugin type.
 */
import { fileURLToPath } from 'node:url';
import { defineLibrary } from '@mp/core';

export default defineLibrary({
  id: '${id}',
  title: '${id}',
  source: { path: fileURLToPath(new URL('../python', import.meta.url)) },
  freeze: [{ package: '${id}' }],
  nameFragment: '${id.replace(/_/g, '-')}',
});
`,
    [`python/${id}/__init__.py`]: `# ${id}: frozen into the firmware by mp (import ${id}).


def hello():
    return "hello from ${id}"
`,
    'test/conformance.test.ts': conformanceTest('library'),
    'vitest.config.ts': vitestConfig,
  };
}
