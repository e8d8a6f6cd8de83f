/**
 * MicroPython's unix port: builds a host executable with the frozen modules, so frozen code can be
 * run and tested on the host (`./export/UNIX-…` then `import app`). No chip, nothing to flash.
 */
import { fileURLToPath } from 'node:url';
import { defineBoard } from '@mp/core';

export default defineBoard({
  id: 'unix',
  title: 'MicroPython unix port (host executable)',
  port: 'unix',
  exportPrefix: 'UNIX',
  variant: 'standard',
  // Built locally from this Dockerfile (Debian bookworm + build-essential + libffi).
  toolchain: { dockerfile: fileURLToPath(new URL('../docker/Dockerfile', import.meta.url)) },
  artifacts: { firmware: 'micropython' },
  firmware: 'firmware',
  firmwareExtension: '',
  defaultManifest: '$(VARIANT_DIR)/manifest.py',
});
