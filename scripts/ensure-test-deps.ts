/**
 * Runs before `npm test`: the tests need Debian's zookeeper (a real server), python3-kazoo (the
 * interoperability tests), postgresql (the job store's second backend; the tests run private
 * clusters, not the system one), systemd (systemd-analyze checks the unit files) and chromium (the dashboard's tests drive it through playwright-core). As root, installs what is missing; otherwise says what to install.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ZOOKEEPER_JAR } from '../src/harness/zookeeper-install.js';
import { findPostgresBinDir } from '../src/harness/postgres-install.js';

const missing: string[] = [];
if (!existsSync(ZOOKEEPER_JAR)) missing.push('zookeeper');
if (spawnSync('/usr/bin/python3', ['-c', 'import kazoo'], { stdio: 'ignore' }).status !== 0) missing.push('python3-kazoo');
if ((await findPostgresBinDir()) === undefined) missing.push('postgresql');
if (spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' }).status !== 0) missing.push('systemd');
if (!existsSync('/usr/bin/chromium')) missing.push('chromium');

if (missing.length > 0) {
  const command = `apt-get install -y ${missing.join(' ')}`;
  if (process.getuid?.() !== 0) {
    process.stderr.write(
      `The tests need Debian packages that are not installed: ${missing.join(', ')}.\nInstall them with: sudo ${command}\n`,
    );
    process.exit(1);
  }
  process.stderr.write(`Installing ${missing.join(', ')} from Debian's packages...\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let result = spawnSync('apt-get', ['install', '-y', ...missing], { stdio: 'inherit', env });
  if (result.status !== 0) {
    spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
    result = spawnSync('apt-get', ['install', '-y', ...missing], { stdio: 'inherit', env });
  }
  if (result.status !== 0) {
    process.stderr.write(`Could not install ${missing.join(', ')}; run: ${command}\n`);
    process.exit(1);
  }
}
