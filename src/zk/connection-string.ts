/**
 * Parses `host:port[,host:port...][/chroot]`, the connection string every ZooKeeper client accepts,
 * so a typo is reported with the offending part instead of surfacing later as a hung connect.
 */

export interface ZkServerAddress {
  readonly host: string;
  readonly port: number;
}

export interface ParsedConnectionString {
  readonly servers: readonly ZkServerAddress[];
  /** Normalised chroot such as `/prefix`, or undefined when none was given. */
  readonly chroot: string | undefined;
  /** The servers alone, without the chroot. */
  readonly hosts: string;
}

const DEFAULT_PORT = 2181;

export function parseConnectionString(input: string): ParsedConnectionString {
  const trimmed = input.trim();
  if (trimmed === '') throw new Error('ZooKeeper connection string is empty; expected host:port[,host:port][/chroot]');
  const slash = trimmed.indexOf('/');
  const hostPart = slash === -1 ? trimmed : trimmed.slice(0, slash);
  const chrootPart = slash === -1 ? '' : trimmed.slice(slash);
  const servers = hostPart.split(',').map((entry) => parseServer(entry.trim(), input));
  return {
    servers,
    chroot: normaliseChroot(chrootPart, input),
    hosts: servers.map((server) => `${server.host}:${server.port}`).join(','),
  };
}

function parseServer(entry: string, input: string): ZkServerAddress {
  if (entry === '') throw new Error(`ZooKeeper connection string "${input}" has an empty server entry`);
  const colon = entry.lastIndexOf(':');
  const host = colon === -1 ? entry : entry.slice(0, colon);
  const portText = colon === -1 ? String(DEFAULT_PORT) : entry.slice(colon + 1);
  if (!/^[A-Za-z0-9.\-[\]:]+$/.test(host)) {
    throw new Error(`ZooKeeper connection string "${input}": "${host}" is not a host name or address`);
  }
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) {
    throw new Error(`ZooKeeper connection string "${input}": port "${portText}" of "${entry}" is not 1-65535`);
  }
  return { host, port };
}

function normaliseChroot(chroot: string, input: string): string | undefined {
  if (chroot === '' || chroot === '/') return undefined;
  const normalised = chroot.replace(/\/+$/, '');
  if (normalised.includes('//') || /\/\.\.?(\/|$)/.test(normalised)) {
    throw new Error(`ZooKeeper connection string "${input}": chroot "${chroot}" is not a valid absolute path`);
  }
  return normalised;
}
