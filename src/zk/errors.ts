/**
 * ZooKeeper error taxonomy. Every failure that crosses the ZooKeeper layer is a `ZkError` carrying the
 * server's numeric code and its stable name, so callers branch on `error.code === 'NODE_EXISTS'` rather
 * than on message text.
 */

/** Every code ZooKeeper 3.8 can send, including those node-zookeeper-client does not know. */
export const ZK_ERROR_CODES = {
  SYSTEM_ERROR: -1,
  RUNTIME_INCONSISTENCY: -2,
  DATA_INCONSISTENCY: -3,
  CONNECTION_LOSS: -4,
  MARSHALLING_ERROR: -5,
  UNIMPLEMENTED: -6,
  OPERATION_TIMEOUT: -7,
  BAD_ARGUMENTS: -8,
  NEW_CONFIG_NO_QUORUM: -13,
  RECONFIG_IN_PROGRESS: -14,
  UNKNOWN_SESSION: -12,
  API_ERROR: -100,
  NO_NODE: -101,
  NO_AUTH: -102,
  BAD_VERSION: -103,
  NO_CHILDREN_FOR_EPHEMERALS: -108,
  NODE_EXISTS: -110,
  NOT_EMPTY: -111,
  SESSION_EXPIRED: -112,
  INVALID_CALLBACK: -113,
  INVALID_ACL: -114,
  AUTH_FAILED: -115,
  SESSION_MOVED: -118,
  NOT_READ_ONLY: -119,
  EPHEMERAL_ON_LOCAL_SESSION: -120,
  NO_WATCHER: -121,
  REQUEST_TIMEOUT: -122,
  RECONFIG_DISABLED: -123,
  SESSION_CLOSED_REQUIRE_SASL: -124,
  QUOTA_EXCEEDED: -125,
  THROTTLED_OP: -127,
} as const;

export type ZkServerErrorName = keyof typeof ZK_ERROR_CODES;

/** Failures raised by this layer itself rather than by the server. */
export type ZkLocalErrorName = 'UNKNOWN_CODE' | 'SESSION_LOST' | 'CLOSED' | 'CONNECT_TIMEOUT' | 'BAD_DATA';

export type ZkErrorName = ZkServerErrorName | ZkLocalErrorName;

const NAME_BY_NUMBER = new Map<number, ZkServerErrorName>(
  Object.entries(ZK_ERROR_CODES).map(([name, value]) => [value, name as ZkServerErrorName]),
);

/** Errors after which the same request may succeed on a later try, possibly on another server. */
const RETRYABLE = new Set<ZkErrorName>([
  'CONNECTION_LOSS',
  'OPERATION_TIMEOUT',
  'REQUEST_TIMEOUT',
  'THROTTLED_OP',
  'SESSION_MOVED',
  'RECONFIG_IN_PROGRESS',
]);

export class ZkError extends Error {
  override readonly name = 'ZkError';
  readonly code: ZkErrorName;
  /** The server's numeric code; 0 for failures raised locally. */
  readonly zkCode: number;
  readonly path: string | undefined;
  readonly retryable: boolean;
  /** For a failed multi: the index of the operation the server rejected. */
  readonly failedOp: number | undefined;

  constructor(
    code: ZkErrorName,
    message: string,
    options: { zkCode?: number; path?: string | undefined; cause?: unknown; failedOp?: number } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.zkCode = options.zkCode ?? ZK_ERROR_CODES[code as ZkServerErrorName];
    this.path = options.path;
    this.retryable = RETRYABLE.has(code);
    this.failedOp = options.failedOp;
  }
}

export function zkErrorNameOf(numericCode: number): ZkServerErrorName | undefined {
  return NAME_BY_NUMBER.get(numericCode);
}

export function isZkError(error: unknown, ...codes: ZkErrorName[]): error is ZkError {
  return error instanceof ZkError && (codes.length === 0 || codes.includes(error.code));
}

/**
 * Turns whatever node-zookeeper-client handed to a callback into a ZkError. The client's exceptions
 * carry a numeric `code`; anything else is wrapped as a local failure so the cause is kept.
 */
export function toZkError(error: unknown, operation: string, path?: string): ZkError {
  if (error instanceof ZkError) return error;
  const numeric = numericCodeOf(error);
  if (numeric !== undefined) {
    const name = zkErrorNameOf(numeric);
    const where = path === undefined ? operation : `${operation} ${path}`;
    if (name !== undefined) {
      return new ZkError(name, `${where}: ${name} (${numeric})`, { zkCode: numeric, path, cause: error });
    }
    return new ZkError('UNKNOWN_CODE', `${where}: server error code ${numeric}`, {
      zkCode: numeric,
      path,
      cause: error,
    });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ZkError('SYSTEM_ERROR', `${operation}${path === undefined ? '' : ` ${path}`}: ${message}`, {
    path,
    cause: error,
  });
}

function numericCodeOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  const code = error.code;
  return typeof code === 'number' ? code : undefined;
}
