/**
 * The watchdog that node-zookeeper-client lacks (docs/zookeeper.md). While connected it keeps one probe
 * request in flight and drops the TCP connection when the reply is overdue, so a frozen server is left
 * for another member while the session still lives. While connecting it drops an attempt whose
 * handshake never completes (a server that accepts TCP but does not answer).
 */
import { CONNECTION_STATE, type ConnectionInternals } from './client-internals.js';
import type { Logger } from '../util/logger.js';
import type { Socket } from 'node:net';

export interface LivenessTimings {
  /** How often the watchdog runs. */
  readonly tickMs: number;
  /** A probe reply later than this means the server is not serving us. */
  readonly replyDeadlineMs: number;
  /** A handshake longer than this is abandoned for the next server. */
  readonly handshakeDeadlineMs: number;
}

/** Timings derived from the session timeout: detect a dead server in about a third of it. */
export function livenessTimings(sessionTimeoutMs: number): LivenessTimings {
  const replyDeadlineMs = Math.max(300, Math.floor(sessionTimeoutMs / 3));
  return {
    tickMs: Math.max(50, Math.floor(replyDeadlineMs / 4)),
    replyDeadlineMs,
    handshakeDeadlineMs: replyDeadlineMs,
  };
}

/** Returns the watchdog's tick function; `probe` sends one cheap request and settles on its reply. */
export function liveness(
  internals: ConnectionInternals,
  timings: LivenessTimings,
  logger: Logger,
  probe: () => Promise<unknown>,
): () => void {
  let probeSentAt: number | undefined;
  let probeGeneration = 0;
  let attemptSocket: Socket | undefined;
  let attemptStartedAt = 0;
  let lastTickAt = Date.now();
  // Any bytes from the server prove it alive: behind a burst of our own pipelined requests the probe's
  // reply can be late while the server is busy answering the ones before it.
  let lastBytesRead = -1;
  let lastProgressAt = Date.now();

  return () => {
    const now = Date.now();
    // A tick that runs late means this process was stalled, not the server: the reply may be sitting
    // unread in the socket, so restart the clock instead of blaming the server.
    const stalled = now - lastTickAt > 2 * timings.tickMs;
    lastTickAt = now;
    const state = internals.state();

    if (state === CONNECTION_STATE.CONNECTED || state === CONNECTION_STATE.CONNECTED_READ_ONLY) {
      attemptSocket = undefined;
      const bytesRead = internals.socket()?.bytesRead ?? 0;
      if (bytesRead !== lastBytesRead || stalled) {
        lastBytesRead = bytesRead;
        lastProgressAt = now;
      }
      if (probeSentAt === undefined) {
        probeSentAt = now;
        const generation = ++probeGeneration;
        probe().then(
          () => {
            if (generation === probeGeneration) probeSentAt = undefined;
          },
          () => {
            if (generation === probeGeneration) probeSentAt = undefined;
          },
        );
      } else if (now - probeSentAt > timings.replyDeadlineMs && now - lastProgressAt > timings.replyDeadlineMs) {
        logger.warn('zookeeper server did not answer in time; moving to another server', {
          overdueMs: now - probeSentAt,
          server: describe(internals.socket()),
        });
        probeSentAt = undefined;
        probeGeneration++;
        internals.dropConnection();
      }
      return;
    }

    probeSentAt = undefined;
    if (state !== CONNECTION_STATE.CONNECTING) return;
    const socket = internals.socket();
    if (socket !== attemptSocket || stalled) {
      attemptSocket = socket;
      attemptStartedAt = now;
    } else if (socket !== undefined && now - attemptStartedAt > timings.handshakeDeadlineMs) {
      logger.warn('zookeeper handshake did not complete in time; trying the next server', {
        server: describe(socket),
      });
      attemptStartedAt = now;
      internals.dropConnection();
    }
  };
}

function describe(socket: Socket | undefined): string | undefined {
  return socket?.remoteAddress === undefined ? undefined : `${socket.remoteAddress}:${String(socket.remotePort)}`;
}
