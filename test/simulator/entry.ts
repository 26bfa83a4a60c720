// The action's entry points the simulator runs as the runner would: the main step's command
// handlers (main.ts's post() is the post step).
import { deploy } from '../../src/commands/deploy.js';
import { rollback } from '../../src/commands/rollback.js';

export const entryPoints = { deploy, rollback };
