/**
 * How a run of an action ends up in the job document: the final write for what the action returned,
 * threw, or for why it was stopped.
 */
import type { JobChanges } from '../api/client/inputs.js';
import type { ThreadResult } from './action-thread.js';
import { RETURN_CODES } from './disposition.js';
import type { LostReason } from './owned-job.js';

/** Why a run was stopped before its action ended by itself. */
export type StopReason = LostReason | 'timeout' | 'shutdown';

export interface Stopped {
  readonly reason: StopReason;
  readonly detail: string;
}

/** The final write for an action's result. */
export function finalChanges(result: ThreadResult, stopped: Stopped | undefined): JobChanges {
  if (stopped?.reason === 'timeout') {
    return { state: 'FAILED', 'return-code': RETURN_CODES.timedOut, 'status-message': stopped.detail };
  }
  switch (result.kind) {
    case 'returned':
      return {
        state: result.returnCode === 0 ? 'SUCCESS' : 'FAILED',
        'return-code': result.returnCode,
        ...(result.message === undefined ? {} : { 'status-message': result.message }),
        ...(result.counters === undefined ? {} : { counters: result.counters }),
      };
    case 'threw':
      return {
        state: 'FAILED',
        'return-code': result.payload ? RETURN_CODES.badPayload : RETURN_CODES.actionError,
        'status-message': result.stack ?? result.message,
      };
    case 'crashed':
      return { state: 'FAILED', 'return-code': RETURN_CODES.actionError, 'status-message': result.message };
    case 'killed':
      return { state: 'FAILED', 'return-code': RETURN_CODES.actionError, 'status-message': 'the action was stopped' };
  }
}
