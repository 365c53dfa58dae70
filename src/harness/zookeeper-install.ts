import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const ZOOKEEPER_PACKAGE = 'zookeeper';
export const ZOOKEEPER_JAR = '/usr/share/java/zookeeper.jar';
/** Without an SLF4J binding on the class path ZooKeeper logs nothing at all. */
export const SLF4J_SIMPLE_JAR = '/usr/share/java/slf4j-simple.jar';
export const ZOOKEEPER_CLASSPATH = `${ZOOKEEPER_JAR}:${SLF4J_SIMPLE_JAR}`;

const INSTALL_HINT = `sudo apt-get install -y ${ZOOKEEPER_PACKAGE}`;
const APT_ENV = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
const APT_MAX_BUFFER = 64 * 1024 * 1024;

// Shared so that parallel starts run apt-get and `java -version` once; cleared on failure to allow a retry.
let check: Promise<void> | undefined;

/**
 * Makes sure Debian's ZooKeeper and a runnable `java` are present. As root, installs the package
 * (the Debian package also pulls in a Java runtime and the SLF4J jars); otherwise explains what to run.
 */
export function ensureZooKeeperInstalled(): Promise<void> {
  check ??= checkInstallation().catch((error: unknown) => {
    check = undefined;
    throw error;
  });
  return check;
}

async function checkInstallation(): Promise<void> {
  if (!(await exists(ZOOKEEPER_JAR))) {
    if (process.getuid?.() !== 0) {
      throw new Error(
        `ZooKeeper is not installed (${ZOOKEEPER_JAR} is missing). ` +
          `Install the Debian package "${ZOOKEEPER_PACKAGE}": ${INSTALL_HINT}`,
      );
    }
    await aptInstall();
    if (!(await exists(ZOOKEEPER_JAR))) {
      throw new Error(`apt-get installed "${ZOOKEEPER_PACKAGE}" but ${ZOOKEEPER_JAR} is still missing`);
    }
  }
  await ensureJavaRunnable();
}

async function aptInstall(): Promise<void> {
  const install = ['install', '-y', ZOOKEEPER_PACKAGE];
  try {
    await run('apt-get', install, { env: APT_ENV, maxBuffer: APT_MAX_BUFFER });
    return;
  } catch {
    // Usually stale package lists on a fresh machine: refresh them and try once more.
  }
  try {
    await run('apt-get', ['update'], { env: APT_ENV, maxBuffer: APT_MAX_BUFFER });
    await run('apt-get', install, { env: APT_ENV, maxBuffer: APT_MAX_BUFFER });
  } catch (error) {
    throw new Error(
      `Could not install ZooKeeper with "apt-get install -y ${ZOOKEEPER_PACKAGE}" ` +
        `(also after "apt-get update"): ${commandFailure(error)}`,
      { cause: error },
    );
  }
}

async function ensureJavaRunnable(): Promise<void> {
  try {
    await run('java', ['-version']);
  } catch (error) {
    throw new Error(
      `ZooKeeper needs a Java runtime, but "java -version" failed: ${commandFailure(error)}. ` +
        `Put java on PATH, e.g. ${INSTALL_HINT} (it depends on default-jre) ` +
        `or sudo apt-get install -y default-jre-headless`,
      { cause: error },
    );
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** execFile's message holds the command line and its stderr; apt's can be long, and its end explains it. */
function commandFailure(error: unknown): string {
  const message = (error instanceof Error ? error.message : String(error)).trim();
  return message.length > 1500 ? `...${message.slice(-1500)}` : message;
}
