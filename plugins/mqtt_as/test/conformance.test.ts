import { fileURLToPath } from 'node:url';
import { describeLibraryConformance } from '@mp/plugin-testing';
import plugin from '../src/index.ts';

describeLibraryConformance(plugin, fileURLToPath(new URL('..', import.meta.url)));
