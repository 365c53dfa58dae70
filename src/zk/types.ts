/** Plain data types of the ZooKeeper layer, free of node-zookeeper-client's classes. */

export type CreateModeName = 'persistent' | 'ephemeral' | 'persistent-sequential' | 'ephemeral-sequential';

export const CREATE_MODE_NUMBER: Readonly<Record<CreateModeName, number>> = {
  persistent: 0,
  ephemeral: 1,
  'persistent-sequential': 2,
  'ephemeral-sequential': 3,
};

export interface NodeStat {
  readonly version: number;
  readonly cversion: number;
  readonly numChildren: number;
  readonly dataLength: number;
  /** Hex session id of the owner of an ephemeral node; all zeros for a persistent one. */
  readonly ephemeralOwner: string;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
}

export type WatchEventType = 'created' | 'deleted' | 'data-changed' | 'children-changed';

export interface WatchEvent {
  readonly type: WatchEventType;
  readonly path: string;
}

export type Watcher = (event: WatchEvent) => void;

export type MultiOp =
  | { readonly op: 'create'; readonly path: string; readonly data?: Buffer; readonly mode?: CreateModeName }
  | { readonly op: 'remove'; readonly path: string; readonly version?: number }
  | { readonly op: 'set'; readonly path: string; readonly data: Buffer; readonly version?: number }
  | { readonly op: 'check'; readonly path: string; readonly version: number };

export type MultiResult = { readonly op: 'create'; readonly path: string } | { readonly op: 'remove' | 'set' | 'check' };

export interface DigestAuth {
  readonly scheme: 'digest';
  /** `user:password`, as ZooKeeper's digest scheme expects. */
  readonly credentials: string;
}

/** One entry of a node's ACL, as the server reports it. */
export interface AclEntry {
  /** `world`, `digest`, `ip`, ... */
  readonly scheme: string;
  /** `anyone` for `world`; `user:<base64 SHA-1 of user:password>` for `digest`. */
  readonly id: string;
  /** Bits of READ 1, WRITE 2, CREATE 4, DELETE 8, ADMIN 16. */
  readonly perms: number;
}

/** Who may touch the nodes this client creates. */
export type AclPolicy = 'open' | 'creator-all';
