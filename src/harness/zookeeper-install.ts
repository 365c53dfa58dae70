import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

import { commandFailure, ensureDebianPackage, installHint, pathExists } from './debian-package.js';

const run = promisify(execFile);

export const ZOOKEEPER_PACKAGE = 'zookeeper';
export const ZOOKEEPER_JAR = '/usr/share/java/zookeeper.jar';
/** Without an SLF4J binding on the class path ZooKeeper logs nothing at all. */
export const SLF4J_SIMPLE_JAR = '/usr/share/java/slf4j-simple.jar';
export const ZOOKEEPER_CLASSPATH = `${ZOOKEEPER_JAR}:${SLF4J_SIMPLE_JAR}`;

const INSTALL_HINT = installHint(ZOOKEEPER_PACKAGE);

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
  await ensureDebianPackage({
    packageName: ZOOKEEPER_PACKAGE,
    product: 'ZooKeeper',
    missing: async () => ((await pathExists(ZOOKEEPER_JAR)) ? undefined : `${ZOOKEEPER_JAR} is missing`),
  });
  await ensureJavaRunnable();
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
