import { fileURLToPath } from 'node:url';
import { describeBoardConformance } from '@mp/plugin-testing';
import plugin from '../src/index.ts';

describeBoardConformance(plugin, fileURLToPath(new URL('..', import.meta.url)));
