import { chmodSync } from 'node:fs';
import { tempProject } from '@mp/test-utils';
import { describe, expect, it } from 'vitest';
import { checkPythonSyntaxOnHost, parseMpyCrossError, toContainerPath } from '../src/dev/syntax-check.ts';

/** A stand-in mpy-cross that fails like the real one for files containing "def broken(". */
const FAKE_MPY_CROSS = `#!/bin/sh
file="$3"
if grep -q 'def broken(' "$file"; then
  line=$(grep -n 'def broken(' "$file" | cut -d: -f1)
  echo "Traceback (most recent call last):"
  echo "  File \\"$file\\", line $line"
  echo "SyntaxError: invalid syntax"
  exit 1
fi
exit 0
`;

describe('the syntax check of mp dev', () => {
  it('reads file, line and message from mpy-cross’s traceback', () => {
    expect(
      parseMpyCrossError([
        'Traceback (most recent call last):',
        '  File "/mp/modules/app.py", line 7',
        'SyntaxError: invalid syntax',
      ]),
    ).toEqual({ file: '/mp/modules/app.py', line: 7, message: 'SyntaxError: invalid syntax' });
  });

  it('maps host files to their paths in the container', () => {
    const mappings = [{ container: '/mp/modules', host: '/home/me/p/modules' }];
    expect(toContainerPath('/home/me/p/modules/sub/app.py', mappings)).toBe('/mp/modules/sub/app.py');
    expect(toContainerPath('/elsewhere/app.py', mappings)).toBeUndefined();
  });

  it('runs the project’s mpy-cross on the host: the first bad file with its line', async () => {
    const p = tempProject({
      'mpy-cross': FAKE_MPY_CROSS,
      'good.py': 'x = 1\n',
      'bad.py': 'x = 1\n\ndef broken(:\n',
    });
    chmodSync(p.path('mpy-cross'), 0o755);
    expect(await checkPythonSyntaxOnHost(p.path('mpy-cross'), [p.path('good.py')])).toBe('ok');
    const problem = await checkPythonSyntaxOnHost(p.path('mpy-cross'), [p.path('good.py'), p.path('bad.py')]);
    expect(problem).toMatchObject({
      file: p.path('bad.py'),
      line: 3,
      message: 'SyntaxError: invalid syntax',
    });
  });

  it('says "not available here" when the host cannot run that mpy-cross, so the container checks', async () => {
    const p = tempProject({ 'mpy-cross': '#!/nonexistent/interpreter\n', 'good.py': 'x = 1\n' });
    chmodSync(p.path('mpy-cross'), 0o755);
    expect(await checkPythonSyntaxOnHost(p.path('mpy-cross'), [p.path('good.py')])).toBeUndefined();
    expect(await checkPythonSyntaxOnHost(p.path('missing-mpy-cross'), [p.path('good.py')])).toBeUndefined();
  });
});
