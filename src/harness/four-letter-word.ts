import { createConnection } from 'node:net';

export type ServerMode = 'standalone' | 'leader' | 'follower' | 'unknown';

const DEFAULT_TIMEOUT_MS = 2000;

/**
 * Sends a ZooKeeper four-letter word (`ruok`, `srvr`, `mntr`, ...) and returns the whole answer.
 * The server closes the connection after answering, so the answer is complete at end of stream.
 * Rejects when the answer is not complete within `timeoutMs`: a frozen (SIGSTOP) server still
 * accepts TCP connections through the kernel, so only a deadline detects it.
 */
export function fourLetterWord(host: string, port: number, cmd: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string> {
  if (!/^[a-z]{4}$/.test(cmd)) {
    return Promise.reject(new Error(`not a four-letter word: ${JSON.stringify(cmd)}`));
  }
  const target = `'${cmd}' to ${host}:${port}`;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = createConnection({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`four-letter word ${target}: no complete answer within ${timeoutMs} ms`));
    }, timeoutMs);

    socket.once('connect', () => socket.write(cmd));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new Error(`four-letter word ${target} failed: ${error.message}`, { cause: error }));
    });
  });
}

/** The `Mode:` line of a `srvr` answer; `unknown` when absent (e.g. "not currently serving requests"). */
export function parseServerMode(srvrAnswer: string): ServerMode {
  const match = /^Mode:\s*(\w+)\s*$/m.exec(srvrAnswer);
  switch (match?.[1]) {
    case 'standalone':
      return 'standalone';
    case 'leader':
      return 'leader';
    case 'follower':
      return 'follower';
    default:
      return 'unknown';
  }
}

/** The server's mode, or `unknown` when it cannot answer (down, frozen, electing). */
export async function serverMode(host: string, port: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ServerMode> {
  try {
    return parseServerMode(await fourLetterWord(host, port, 'srvr', timeoutMs));
  } catch {
    return 'unknown';
  }
}
