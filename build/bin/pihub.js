#!/usr/bin/env node
// Runs the TypeScript sources directly (through tsx), so there is no separate compile step.
import { register } from 'tsx/esm/api';

register();
const { run } = await import('../cli.ts');
await run(process.argv.slice(2));
