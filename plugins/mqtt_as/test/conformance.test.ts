import { fileURLToPath } from 'node:url';
import { describeLibraryConformance } from '@mp/test-utils/conformance';
import plugin from '../src/index.ts';

describeLibraryConformance(plugin, fileURLToPath(new URL('..', import.meta.url)));
