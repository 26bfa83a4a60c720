// The action's entry points the simulator runs as the runner would: the main step's command
// handlers (main.ts's post() is the post step).
import { deploy, rollback } from '../../src/commands/deploy.js';

export const entryPoints = { deploy, rollback };
