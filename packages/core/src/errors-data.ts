/**
 * The catalog of every error mp shows, as Astro's errors-data.ts: a permanent code (searchable,
 * stable across releases), a title, what it means, and what to do when the place that raised it
 * has nothing more specific to say. `MpError`'s `code` is typed by this catalog, so neither the code
 * nor a test can name a code that does not exist (test/e2e's battery and core's catalog test check
 * every code the tests expect against it).
 */
export interface ErrorEntry {
  title: string;
  /** What the error means, in general (the raised error's message says what happened this time). */
  message: string;
  /** What to do, when the raising code gives no hint of its own. */
  hint: string;
}

const entry = (title: string, message: string, hint: string): ErrorEntry => ({ title, message, hint });

export const ERRORS = {
  // ── usage, config, project ──
  USAGE: entry(
    'Bad command line',
    'The command, an option or its value is not what mp takes.',
    'Run `mp --help` or `mp <command> --help`.',
  ),
  PROJECT_NOT_FOUND: entry(
    'No such project folder',
    'The project directory does not exist.',
    'Pass an existing folder with --cwd.',
  ),
  CONFIG_NOT_FOUND: entry(
    'Config file missing',
    'The config file named with --config does not exist.',
    'Fix the path, or leave out --config.',
  ),
  CONFIG_AMBIGUOUS: entry(
    'Two config files',
    'The project has more than one mp.config file; mp would use only one.',
    'Keep one, or choose one with --config.',
  ),
  CONFIG_LOAD_FAILED: entry(
    'Config file failed to load',
    'The config file is not valid JSON, or its module threw.',
    'Fix the error in the config file.',
  ),
  CONFIG_INVALID: entry(
    'Config invalid',
    'Keys of the config have wrong types or values.',
    'Fix the keys listed; README "A project" shows every key.',
  ),
  CACHE_DIR_INVALID: entry(
    'Cache folder unusable',
    'The cache path is a file, not a folder.',
    'Point MP_CACHE_DIR at a folder, or unset it.',
  ),
  REMOTE_CACHE_URL_INVALID: entry(
    'Remote cache address invalid',
    'MP_REMOTE_CACHE_URL (or cache.remote.url) is not an http:// or https:// URL.',
    'Set it to the remote cache server’s address, or unset it.',
  ),
  WORKSPACE_INVALID: entry(
    'Workspace file unreadable',
    'pnpm-workspace.yaml or package.json workspaces cannot be read.',
    'Fix the workspace file.',
  ),
  SCAFFOLD_EXISTS: entry(
    'Folder exists',
    'mp new never overwrites an existing folder.',
    'Pick another id, or --dir.',
  ),
  // ── plugins ──
  UNKNOWN_BOARD: entry(
    'Unknown board',
    'No board plugin has that id.',
    'Run `mp boards` (or `mp boards --upstream`) to list boards.',
  ),
  UNKNOWN_LIBRARY: entry(
    'Unknown library',
    'No library plugin has that id.',
    'Run `mp libs` to list libraries.',
  ),
  PLUGIN_INVALID: entry(
    'Plugin invalid',
    'A plugin object breaks the plugin contract.',
    'Fix the fields listed in the plugin module.',
  ),
  PLUGIN_PACKAGE_INVALID: entry(
    'Plugin package invalid',
    'A package\'s "mp" field in package.json is wrong.',
    'Fix the package.json of the plugin.',
  ),
  PLUGIN_IMPORT_FAILED: entry(
    'Plugin failed to load',
    "A plugin's module threw or could not be found when imported.",
    'Fix the module, or reinstall the package.',
  ),
  PLUGIN_ID_MISMATCH: entry(
    'Plugin id mismatch',
    'The id in package.json and the plugin object differ.',
    'Make them the same.',
  ),
  PLUGIN_DUPLICATE_ID: entry(
    'Two plugins, one id',
    'Two packages declare the same board or library id.',
    'Rename one of them, or remove one.',
  ),
  PLUGIN_HOOK_FAILED: entry(
    'Plugin hook failed',
    "A plugin's resolve hook threw.",
    'Check the hook against this MicroPython version, or report it to the plugin authors.',
  ),
  BOARD_INVALID: entry(
    'Board invalid',
    'A board, after its resolve hook, does not name its firmware artifact.',
    'Fix the board plugin.',
  ),
  BOARD_NO_TOOLCHAIN: entry(
    'Board has no toolchain',
    'The board names neither an image nor a Dockerfile.',
    'Give the board a toolchain, or pass --image.',
  ),
  BOARD_NOT_FLASHABLE: entry(
    'Board cannot be flashed',
    'The board has no chip or flash layout (a host build such as unix).',
    'Run the exported program instead, or pick an ESP board.',
  ),
  LIBRARY_UNSUPPORTED_BOARD: entry(
    'Library does not fit the board',
    "The library does not list the board's port.",
    'Leave it out, or pick a board whose port it supports.',
  ),
  LIBRARY_FREEZE_MISSING: entry(
    'Library file missing',
    'A file the library freezes is not in its source.',
    "Pin another ref, or fix the plugin's freeze entries.",
  ),
  LIBRARY_EXPORT_MISSING: entry(
    'Library export missing',
    'A file the library exports is not in its source.',
    "Pin another ref, or fix the plugin's exports.",
  ),
  // ── sources ──
  GIT_NOT_FOUND: entry('git missing', 'mp fetches sources with git, which is not installed.', 'Install git.'),
  SOURCE_UNREACHABLE: entry(
    'Source unreachable',
    'A git repository cannot be reached.',
    'Check the network and the URL, or set MP_GIT_MIRRORS.',
  ),
  SOURCE_FETCH_FAILED: entry(
    'Fetch failed',
    'git could not fetch from a reachable repository.',
    'Run again; if it persists, delete that repository in the mp cache.',
  ),
  SOURCE_PATH_NOT_FOUND: entry(
    'Local source missing',
    'A local source folder does not exist or is a file.',
    'Fix the path, or remove it to fetch with git.',
  ),
  NOT_MICROPYTHON: entry(
    'Not a MicroPython checkout',
    'The folder lacks py/mpconfig.h or the board’s port.',
    'Point micropython.path at the top of a MicroPython clone.',
  ),
  UNKNOWN_REF: entry(
    'Unknown ref',
    'The repository has no such tag, branch or commit.',
    'Pick one of the refs the message lists.',
  ),
  NO_STABLE_TAG: entry(
    'No release tag',
    'The repository has no vX.Y.Z tag to default to.',
    'Name a ref with --micropython.',
  ),
  SUBMODULE_UNKNOWN: entry(
    'Unknown submodule',
    'The MicroPython tree has no such submodule.',
    'Check the path in `submodules`.',
  ),
  SUBMODULE_MISSING: entry(
    'Submodule missing',
    'A local checkout lacks a submodule the port needs.',
    'Run git submodule update --init for the paths listed.',
  ),
  LOCK_FAILED: entry(
    'Lock failed',
    'A lock folder could not be created or read.',
    'Check the permissions of the cache and .mp folders.',
  ),
  // ── project inputs ──
  MODULES_NOT_FOUND: entry(
    'Modules folder missing',
    'The modules folder the config or a flag names does not exist.',
    'Name an existing folder, or leave it out to use modules/.',
  ),
  MODULE_NAME_CLASH: entry(
    'Module name clash',
    'A project module has the import name of a frozen library.',
    'Rename the module, or leave the library out.',
  ),
  MODULE_NAME_INVALID: entry(
    'Module name not UTF-8',
    'A file name in the modules folder is not UTF-8.',
    'Rename the file.',
  ),
  C_MODULE_INVALID: entry(
    'C module invalid',
    'A C module folder is missing, lacks its build file, or clashes by name.',
    'Fix the folder; `mp new c-module` writes a working one.',
  ),
  EXPORT_DIR_INVALID: entry(
    'Export folder unusable',
    'The export path is a file.',
    'Move it, or export elsewhere with --export-dir.',
  ),
  // ── Docker and the build ──
  DOCKER_UNAVAILABLE: entry(
    'Docker engine unreachable',
    'The Docker engine does not answer.',
    'Start Docker, or set DOCKER_HOST; `mp doctor` checks it.',
  ),
  IMAGE_UNAVAILABLE: entry(
    'Toolchain image unavailable',
    'The toolchain image is neither present nor pullable.',
    'Check the network, or pass --image with one you have.',
  ),
  IMAGE_BUILD_FAILED: entry(
    'Toolchain image build failed',
    "docker build of the board's Dockerfile failed.",
    'Read the build output; fix the Dockerfile or the network.',
  ),
  CONTAINER_FAILED: entry(
    'Container failed',
    'The engine could not create or run the toolchain container.',
    'Check the engine with `docker info` and `mp doctor`.',
  ),
  BUILD_RUNNING: entry(
    'A build is running',
    'Another process builds this project and board.',
    'Wait for it, or stop it.',
  ),
  BUILD_STEP_ORDER: entry(
    'Build steps out of order',
    'A build step ran before the one it depends on (a bug in a caller of createBuild).',
    'Run the steps in the order createBuild returns them.',
  ),
  CACHE_IN_USE: entry(
    'Cache in use',
    'A build uses the source cache, so `mp clean --all` will not remove it.',
    'Wait for the builds listed, then run it again.',
  ),
  CLEAN_FAILED: entry(
    'Clean failed',
    'A path could not be removed.',
    'Check its permissions, or remove it by hand.',
  ),
  VERIFY_NO_SIDECAR: entry(
    'No provenance to verify',
    '`mp verify` was given a file without a readable mp export sidecar (`<firmware>.json`).',
    'Name a firmware that mp build exported, with its sidecar beside it, or the sidecar itself.',
  ),
  VERIFY_DIFFERENT: entry(
    'Rebuild differs',
    '`mp verify` rebuilt the firmware from its provenance and got other bytes.',
    'Read the inputs listed as different; with none listed, the build is not reproducible: report it with both files.',
  ),
  COMPILE_FAILED: entry(
    'Compile failed',
    'make failed in the toolchain container.',
    'Read the compiler errors; the full log is in .mp/build/<board>/build.log.',
  ),
  FREEZE_FAILED: entry(
    'Frozen module failed',
    'A frozen Python module did not compile.',
    'Fix the Python error shown.',
  ),
  ARTIFACT_MISSING: entry(
    'Build output missing',
    'make succeeded but an artifact the board declares is not there.',
    "Fix the board plugin's artifacts for this MicroPython version.",
  ),
  EXPORT_FAILED: entry(
    'Export failed',
    'The firmware could not be written to the export folder.',
    'Check the folder’s permissions and free space.',
  ),
  EXPORT_NO_SPACE: entry(
    'No space to export',
    'The export folder’s disk is full.',
    'Free space, or export elsewhere.',
  ),
  EXPORT_INVALID: entry(
    'Export unreadable',
    'An exported sidecar or index cannot be read.',
    'Build again to write a new one.',
  ),
  BUILD_FAILED: entry(
    'Build failed',
    'A build in mp dev failed in a way no step named.',
    'Read the message; the full log is in .mp/build/<board>/build.log.',
  ),
  DEV_FAILED: entry(
    'mp dev failed',
    'The watch-build-flash loop hit an error outside a build or a flash.',
    'Read the message and start mp dev again.',
  ),
  // ── many targets, several engines ──
  TARGETS_NONE: entry(
    'No targets',
    'The config has no `targets`, so `mp build --all`/`--target` has nothing to build.',
    'Add `targets: { name: { board, variant?, … } }` to mp.config (README "Many targets").',
  ),
  TARGET_UNKNOWN: entry(
    'No such target',
    '`--target` names a target the config does not have.',
    'Run `mp targets` for the names.',
  ),
  TARGETS_FAILED: entry(
    'Targets failed',
    'One or more targets did not build; the others are exported.',
    'Read each failed target’s error in the summary; its full log is in .mp/build/target-<name>/build.log.',
  ),
  ENGINE_CONTEXT_UNKNOWN: entry(
    'Docker context not found',
    'An entry of `engines` names a Docker context that does not exist or has no Docker endpoint.',
    '`docker context ls` lists them; or write the address (tcp://…, ssh://…).',
  ),
  ENGINE_FAILED: entry(
    'Docker engine failed',
    'An engine of `engines` stopped answering (before or during a build); its targets went to the others.',
    'Check that engine with `docker info`; the other engines go on without it.',
  ),
  NO_ENGINE: entry(
    'No engine left',
    'No engine of `engines` answers, so the targets cannot build anywhere.',
    'Start one of the engines, or fix `engines` in mp.config; `mp doctor` checks DOCKER_HOST.',
  ),
  // ── firmware files ──
  FIRMWARE_NOT_FOUND: entry(
    'No firmware',
    'Nothing was exported for this board yet, or the file is missing.',
    'Run `mp build` first, or name a file.',
  ),
  FIRMWARE_EMPTY: entry('Empty firmware', 'The firmware file is empty.', 'Build again.'),
  FIRMWARE_MODIFIED: entry(
    'Firmware changed',
    'An exported file no longer matches its sidecar.',
    'Build again, or flash the file by name.',
  ),
  FIRMWARE_NOT_AN_IMAGE: entry(
    'Not a firmware image',
    'The file does not start with an ESP image header (0xE9).',
    'Flash a firmware .bin, or --force for one without a header.',
  ),
  IMAGE_WRONG_CHIP: entry(
    'Image for another chip',
    "The image's header names another chip than the board's.",
    'Flash an image built for this board, or --force.',
  ),
  IMAGE_TOO_LARGE: entry(
    'Image too large',
    "The image does not fit the board's flash.",
    'Build a smaller firmware, or use a board with more flash.',
  ),
  FLASH_LAYOUT_INVALID: entry(
    'Flash layout invalid',
    'A segment offset is not on a 4 KiB sector boundary.',
    "Fix the board's flash layout.",
  ),
  // ── serial and flashing ──
  SERIAL_BINDING_INVALID: entry(
    'Serial binding invalid',
    'MP_SERIAL_BINDING names a module without a binding.',
    'Fix MP_SERIAL_BINDING, or unset it for real hardware.',
  ),
  PORT_LIST_FAILED: entry(
    'Ports cannot be listed',
    'The serial ports could not be listed.',
    'Name the port with --port.',
  ),
  PORT_NOT_FOUND: entry(
    'No board found',
    'No USB serial adapter is connected.',
    'Plug the board in with a data cable, or name the port with --port.',
  ),
  PORT_AMBIGUOUS: entry(
    'Several boards',
    'More than one USB serial adapter is connected.',
    'Name the port with --port.',
  ),
  PORT_OPEN_FAILED: entry(
    'Port cannot be opened',
    'The serial port could not be opened.',
    'Check the path, and that nothing else holds it.',
  ),
  PORT_BUSY: entry(
    'Port busy',
    'Another program holds the serial port.',
    'Close the other program (a monitor, another mp).',
  ),
  PORT_PERMISSION_DENIED: entry(
    'Port not permitted',
    'Your user may not open the serial port.',
    'Linux: add yourself to the dialout (or uucp) group and log in again.',
  ),
  DEVICE_NO_ANSWER: entry(
    'Board does not answer',
    'The ROM bootloader did not answer the reset and sync.',
    'Hold BOOT while plugging in, check the cable, or lower --baud.',
  ),
  DEVICE_LOST: entry(
    'Board went away',
    'The USB device disappeared.',
    'Plug it back in and run the command again.',
  ),
  DEVICE_PROTOCOL_ERROR: entry(
    'Protocol error',
    'The bootloader or stub answered something unexpected.',
    'Run again; if it persists, lower --baud or use another cable.',
  ),
  DEVICE_CHANGED: entry(
    'Another board',
    'The board on the port is not the one mp was flashing.',
    'Run the command again for the board connected now.',
  ),
  WRONG_CHIP: entry(
    'Wrong chip',
    "The chip found is not the board's.",
    'Pick the matching board with --board, or flash another port.',
  ),
  FLASH_FAILED: entry(
    'Flash failed',
    'Writing the flash failed.',
    'Run again; lower --baud if it keeps failing.',
  ),
  VERIFY_FAILED: entry(
    'Verify failed',
    "The flash's MD5 does not match the image after writing.",
    'Run `mp flash --full`; check cable and power.',
  ),
  MONITOR_DETACHED: entry(
    'Monitor detached',
    'The serial monitor does not hold the port.',
    'Attach it first.',
  ),
  // ── the REPL ──
  REPL_NOT_ANSWERING: entry(
    'No REPL',
    'Nothing answered a MicroPython REPL on the port.',
    'Check the firmware, the baud rate, and that main.py does not block Ctrl-C.',
  ),
  REPL_PROTOCOL: entry(
    'REPL protocol error',
    "The board's answer is not MicroPython's raw REPL.",
    'Reset the board and try again.',
  ),
  REPL_EXCEPTION: entry(
    'Exception on the board',
    'Python raised an exception on the board.',
    'Read the traceback.',
  ),
  PUT_FILE_MISSING: entry('File to copy missing', 'A file for `mp put` cannot be read.', 'Fix the path.'),
  PUT_VERIFY_FAILED: entry(
    'Copy verify failed',
    "A copied file's hash on the board does not match.",
    'Try again, with a shorter cable or lower --baud.',
  ),
  // ── the process ──
  CANCELLED: entry('Cancelled', 'The user or a signal stopped the command.', 'Nothing to do.'),
  INTERNAL: entry(
    'Bug in mp',
    'mp failed in a way it did not expect.',
    'Report it with the output above and `mp doctor`.',
  ),
} as const satisfies Record<string, ErrorEntry>;

export type ErrorCode = keyof typeof ERRORS;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERRORS, code);
}
