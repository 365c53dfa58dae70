/** The engine's feed (`POST /api/job/feed`): what it answers for each job it unparked, for the feeder to enqueue. */
export const FEED_PATH = '/api/job/feed';

export interface FedJob {
  readonly id: string;
  readonly priority: number;
  readonly action: string;
  readonly queue: string;
}
