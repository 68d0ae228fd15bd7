// Which build serves this process, recorded on request and warm-up spans.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The build serving this process: NEXT_DEPLOYMENT_ID, else `next build`'s `.next/BUILD_ID`. */
export function currentBuildId(env = process.env, appDir = process.cwd()) {
  if (env.NEXT_DEPLOYMENT_ID) return env.NEXT_DEPLOYMENT_ID;
  try {
    return readFileSync(join(appDir, '.next', 'BUILD_ID'), 'utf8').trim();
  } catch {
    return ''; // not started by `next start` from the app's folder: no build id to record
  }
}
