/**
 * Credentials belong on the board's filesystem (`mp put`, config `files`), not in the firmware:
 * a frozen module is readable by anyone who holds the .bin, and every board flashed with it gets
 * the same secrets. So a project module that looks like a credentials file gets a warning before
 * it is frozen: `mqtt_local.py` (mqtt_as's config template), `secrets.py`, or any module assigning
 * both a Wi-Fi SSID and a password.
 */
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

const CREDENTIAL_FILES = new Set(['mqtt_local.py', 'secrets.py', 'secret.py', 'credentials.py']);
const SSID = /\bssid\b/i;
// `PASSWORD = …`, `"password": …`, `wifi_pw=…`: a name given a value, in code or a dict.
const PASSWORD = /\b(?:password|passwd|pw|wifi_pw|psk|key)\b["']?\s*[=:]/i;

/** Module files (relative to the modules folder) that look like credentials, with why. */
export async function credentialModules(
  modulesDir: string,
  files: string[],
): Promise<Array<{ file: string; why: string }>> {
  const found: Array<{ file: string; why: string }> = [];
  for (const file of files) {
    if (CREDENTIAL_FILES.has(basename(file))) {
      found.push({ file, why: `${basename(file)} is where credentials usually live` });
      continue;
    }
    let text = '';
    try {
      text = readFileSync(join(modulesDir, file), 'utf8');
    } catch {
      // Gone since it was listed: nothing to warn about.
    }
    if (SSID.test(text) && PASSWORD.test(text))
      found.push({ file, why: 'it sets a Wi-Fi SSID and a password' });
  }
  return found;
}
