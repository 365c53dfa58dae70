/**
 * `--version` of every command, run as a user runs it: the package's version on stdout, exit 0.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';

const COMMANDS = ['jobctl', 'job-executor', 'job-distributor', 'job-api'] as const;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(command: string, args: readonly string[]): Promise<Run> {
  const bin = fileURLToPath(new URL(`../src/bin/${command}.ts`, import.meta.url));
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', bin, ...args], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr });
    });
  });
}

describe('--version', () => {
  for (const command of COMMANDS) {
    test(`${command} --version prints the package's version and exits 0`, async () => {
      const manifest = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
      const result = await run(command, ['--version']);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, `${manifest.version}\n`);
    });
  }
});
