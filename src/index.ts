// Entry point for both the main and the post step (action.yml runs this file for each).
// First import: it must run before any bundled library loads.
import './no-debug-output.js';
import { isPostStep } from './inputs.js';
import { main, post } from './main.js';

// Bundled libraries use APIs Node flags as deprecated (url.parse); users cannot act on that
// warning, and it would land in every job log.
process.noDeprecation = true;

await (isPostStep() ? post() : main());
