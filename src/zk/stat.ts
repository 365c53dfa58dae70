/** Conversions of node-zookeeper-client's raw replies (parsed from `unknown`) into plain types. */
import type { NodeStat, WatchEvent, WatchEventType } from './types.js';

function bufferField(value: unknown, field: string): Buffer {
  if (typeof value === 'object' && value !== null && field in value) {
    const candidate: unknown = Reflect.get(value, field);
    if (Buffer.isBuffer(candidate)) return candidate;
  }
  return Buffer.alloc(8);
}

function numberField(value: unknown, field: string): number {
  if (typeof value === 'object' && value !== null && field in value) {
    const candidate: unknown = Reflect.get(value, field);
    if (typeof candidate === 'number') return candidate;
  }
  return 0;
}

function int64(buffer: Buffer): number {
  return buffer.length >= 8 ? Number(buffer.readBigInt64BE(0)) : 0;
}

export function toNodeStat(raw: unknown): NodeStat {
  return {
    version: numberField(raw, 'version'),
    cversion: numberField(raw, 'cversion'),
    numChildren: numberField(raw, 'numChildren'),
    dataLength: numberField(raw, 'dataLength'),
    ephemeralOwner: bufferField(raw, 'ephemeralOwner').toString('hex'),
    mtimeMs: int64(bufferField(raw, 'mtime')),
    ctimeMs: int64(bufferField(raw, 'ctime')),
  };
}

const EVENT_TYPES: Readonly<Record<number, WatchEventType>> = {
  1: 'created',
  2: 'deleted',
  3: 'data-changed',
  4: 'children-changed',
};

export function toWatchEvent(raw: unknown): WatchEvent | undefined {
  const type = EVENT_TYPES[numberField(raw, 'type')];
  if (type === undefined || typeof raw !== 'object' || raw === null) return undefined;
  const path: unknown = Reflect.get(raw, 'path');
  return { type, path: typeof path === 'string' ? path : '' };
}
