/**
 * `dummy_test_action`: a smoke-test job every 15 s (the action sleeps 5 s, reporting progress), to
 * watch a whole engine work. Off unless named: `job-distributor dummy_test_action`.
 */
import { defineDistribution } from 'zk-job-engine';

export default defineDistribution({
  name: 'dummy_test_action',
  description: 'a dummy_test_action job every 15 s (off unless named)',
  schedule: { everySeconds: 15 },
  enabledByDefault: false,
  // Only the latest tick matters for a smoke test; older ones are not made up.
  catchUpSeconds: 15,
  jobs: () => [{ action: 'dummy_test_action' }],
});
