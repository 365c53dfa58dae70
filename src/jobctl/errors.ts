/**
 * How jobctl fails: one line on stderr and an exit code a script can branch on. A user's mistake
 * (a bad option, id or filter) is a usage error; anything the engine answers or fails to answer is a
 * failure. Nothing here prints a stack: the line must say what went wrong in the user's terms.
 */
import { ClientOptionsError } from '../api/client/options.js';
import { ApiError } from '../api/errors.js';
import { OptionsError } from '../cli/option-readers.js';
import { ZkError } from '../zk/errors.js';

export const EXIT = Object.freeze({
  ok: 0,
  /** The API or ZooKeeper could not be reached, the job is not there, the change is refused. */
  failure: 1,
  /** A bad command line, option, id or filter. */
  usage: 2,
  /** Interrupted (Ctrl-C) while following a job, or the job followed by `create --wait` was canceled. */
  interrupted: 130,
});

/** A failure jobctl itself detects, with the exit code it deserves. */
export class JobctlError extends Error {
  override readonly name = 'JobctlError';
  readonly exitCode: number;

  constructor(message: string, exitCode: number, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.exitCode = exitCode;
  }
}

export const usageError = (message: string): JobctlError => new JobctlError(message, EXIT.usage);
export const failure = (message: string, cause?: unknown): JobctlError => new JobctlError(message, EXIT.failure, { cause });

export interface FailureLine {
  readonly message: string;
  readonly exitCode: number;
}

/** Where the command was talking to, so "connection refused" names the server. */
export interface FailureContext {
  readonly apiUrl: string;
}

/** The one line and exit code for anything a command threw. */
export function describeFailure(error: unknown, context: FailureContext): FailureLine {
  if (error instanceof JobctlError) return { message: oneLine(error.message), exitCode: error.exitCode };
  if (error instanceof OptionsError) return { message: oneLine(error.message), exitCode: EXIT.usage };
  // The client checks the URL it is given; the user gave it as --api-url.
  if (error instanceof ClientOptionsError)
    return { message: oneLine(error.message.replace(/"baseUrl(\[\d+\])?"/, '--api-url')), exitCode: EXIT.usage };
  if (error instanceof ApiError) return apiFailure(error, context);
  if (error instanceof ZkError) {
    // The engine runs with a ZooKeeper identity and this jobctl was not given it (or another one).
    if (error.code === 'NO_AUTH')
      return {
        message: `ZooKeeper refused access to ${error.path ?? 'a node'} (NO_AUTH): the engine's nodes are closed to this identity; give the engine's identity file with --zk-auth-file (or JOBCTL_ZK_AUTH_FILE)`,
        exitCode: EXIT.failure,
      };
    const message = oneLine(error.message);
    return { message: /zookeeper/i.test(message) ? message : `ZooKeeper ${error.code}: ${message}`, exitCode: EXIT.failure };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { message: `unexpected failure: ${oneLine(message)}`, exitCode: EXIT.failure };
}

function apiFailure(error: ApiError, context: FailureContext): FailureLine {
  const message = oneLine(error.message);
  switch (error.code) {
    case 'bad-request':
      // The request as the user wrote it (an id, a filter, a field) is wrong: theirs to fix.
      return { message, exitCode: EXIT.usage };
    case 'unauthorized':
      return {
        message: `the job API at ${context.apiUrl} refused the credentials: ${message} (give --api-key-file, or --api-key and --api-secret)`,
        exitCode: EXIT.failure,
      };
    case 'forbidden':
      return { message: `the API key may not do this: ${message}`, exitCode: EXIT.failure };
    case 'unavailable':
      return {
        message: `cannot reach the job API at ${context.apiUrl}: ${message.replace(': the job API did not answer', '')}`,
        exitCode: EXIT.failure,
      };
    default:
      return { message, exitCode: EXIT.failure };
  }
}

/** Server messages may carry newlines (a stack in a status message, a multi-line reason). */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
